import CollectionRunner
import Foundation
import Glibc
import RingFormat
import Vocabulary

/// A ring a followed process handed over (leakhandshake.h): a new program image (the launched one, or
/// one after an exec) or a fork child, with the sender's pid and uid as the kernel reports them.
public struct RingHandover {
    public enum Kind: Sendable {
        case image, fork
    }

    public let kind: Kind
    /// The sender in our pid namespace (SO_PEERCRED), not what it wrote.
    public let pid: Int32
    public let uid: UInt32
    /// The parent the sender named (its own pid namespace: only a hint).
    public let claimedParent: Int32
    public let mapping: RingMapping
}

/// The collector's end of the hand-shake: a socket in the abstract namespace that launched processes
/// connect to when they create a ring. Never blocks; one `poll` takes what has arrived.
public final class HandshakeListener {
    /// The name the shim finds in LEAKSHIM_COLLECTOR.
    public let name: String
    private var fd: Int32
    /// Connections accepted whose hello has not arrived yet.
    private var waiting: [(fd: Int32, since: UInt64)] = []
    /// Hand-overs refused: a bad hello, a ring that failed its checks (kept for the summary).
    public private(set) var refusals: [String] = []

    public init() throws(CollectError) {
        name = "leakcollect.\(getpid()).\(String(UInt64.random(in: 1...UInt64.max), radix: 16))"
        fd = lr_hs_listen(name)
        guard fd >= 0 else { throw .other("cannot listen for the launched program's ring (\(String(cString: strerror(errno))))") }
    }

    deinit { close() }

    /// Stops listening: a shim that connects from now on is refused at once and runs untracked, instead
    /// of waiting for a claim that will not come.
    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        for w in waiting { Glibc.close(w.fd) }
        waiting = []
    }

    /// Every hand-over that has arrived since the last call.
    public func poll() -> [RingHandover] {
        while fd >= 0 {
            let c = lr_hs_accept(fd)
            if c < 0 { break }
            waiting.append((c, monotonicNow()))
        }
        var out: [RingHandover] = []
        var still: [(fd: Int32, since: UInt64)] = []
        for w in waiting {
            var hello = lr_hello()
            var ringFD: Int32 = -1
            var peer = lr_peer()
            let r = lr_hs_receive(w.fd, &hello, &ringFD, &peer)
            if r == 0 {
                // A shim sends right after connecting; one that has not within a second never will.
                if monotonicNow() &- w.since < 1_000_000_000 { still.append(w) } else { Glibc.close(w.fd) }
                continue
            }
            Glibc.close(w.fd)
            guard r == 1, hello.magic == LR_HS_MAGIC, hello.version == LR_HS_VERSION, ringFD >= 0,
                hello.kind == UInt16(LR_HS_IMAGE.rawValue) || hello.kind == UInt16(LR_HS_FORK.rawValue)
            else {
                if ringFD >= 0 { Glibc.close(ringFD) }
                refusals.append("a malformed hand-over from pid \(peer.pid)")
                continue
            }
            do {
                let mapping = try RingMapping(fd: ringFD, pid: peer.pid)
                out.append(
                    RingHandover(
                        kind: hello.kind == UInt16(LR_HS_FORK.rawValue) ? .fork : .image, pid: peer.pid, uid: peer.uid,
                        claimedParent: hello.ppid, mapping: mapping))
            } catch {
                refusals.append(error.description)
            }
        }
        waiting = still
        return out
    }
}
