import CollectionRunner
import Glibc
import RingFormat
import SessionStore
import Tracking
import Vocabulary

/// Launch mode as one event source: the launched process through every exec, and, with
/// `--follow-children`, every process it forks or execs below it. Each program image is a ring of its
/// own, handed over through the `HandshakeListener`, and an address space of its own in the tracker: an
/// exec closes the old image's space (end `exec`) and opens the new one with the old as its parent; a
/// child's space has its parent's current image as parent. The collection ends when the launched
/// process has exited and every followed process has too (like `strace -f`), or on a stop signal.
public final class LaunchSource: EventSource {
    /// One followed image: its ring, and how to learn that its process ended.
    private final class Image {
        let ring: RingSource
        /// A pidfd for a process that is not our child (readable once it exits); -1 for the launched one.
        let exitFD: Int32

        init(ring: RingSource, exitFD: Int32) {
            self.ring = ring
            self.exitFD = exitFD
        }

        deinit { if exitFD >= 0 { close(exitFD) } }

        var exited: Bool { exitFD >= 0 ? lr_fd_readable(exitFD) == 1 : false }
    }

    private let program: LaunchedProgram
    private let listener: HandshakeListener
    private let followChildren: Bool
    /// Whose rings are accepted: the launched program's user, or ours.
    private let uids: Set<UInt32>
    /// The current image of every followed process, by pid.
    private var images: [Int32: Image] = [:]
    /// Hand-overs that arrived before `begin` (the launch itself waits for the first one).
    private var early: [RingHandover]
    private var programEnd: SessionEnd?
    /// Detached: hand-overs that still arrive are not taken (their shims stop waiting within the grace).
    private var stopped = false
    /// Counters of the rings whose images have ended.
    private var endedCounters: [CounterName: UInt64] = [:]
    private let log: (String) -> Void
    /// The command line of the image the launched process runs now.
    public private(set) var currentCommand: [String]?

    init(
        program: LaunchedProgram, listener: HandshakeListener, first: RingSource, early: [RingHandover], followChildren: Bool,
        log: @escaping (String) -> Void
    ) {
        self.program = program
        self.listener = listener
        self.followChildren = followChildren
        self.early = early
        self.log = log
        var uids: Set<UInt32> = [UInt32(getuid()), UInt32(geteuid())]
        if let owner = ProcessOwner.of(pid: program.pid) { uids.insert(owner.uid) }
        self.uids = uids
        currentCommand = first.command
        images[program.pid] = Image(ring: first, exitFD: -1)
    }

    /// The launched process.
    public var pid: Int32 { program.pid }

    public func begin(into tracker: Tracker) throws {
        try images[program.pid]?.ring.begin(into: tracker)
        let pending = early
        early = []
        for h in pending { adopt(h, tracker) }
    }

    /// Takes a handed-over ring: closes the image it replaces (exec), opens a space for the new one.
    private func adopt(_ h: RingHandover, _ tracker: Tracker) {
        guard uids.contains(h.uid) else {
            log("ignored a ring handed over by pid \(h.pid) of uid \(h.uid), not the launched program's user")
            return
        }
        var parent: SpaceID?
        if let old = images.removeValue(forKey: h.pid) {
            // The pid exec'd: every thread of the old image is gone, so what it committed is all there is.
            retire(old, tracker, end: h.kind == .image ? .exec : .exited)
            parent = old.ring.space
        } else {
            guard followChildren || h.pid == program.pid else { return }
            let ppid = ProcStat.parent(of: h.pid)
            parent = (ppid.flatMap { images[$0] } ?? images[h.claimedParent])?.ring.space
        }
        // Both before the claim: the process waits for it, so it cannot have exited yet.
        let maps = ProcMaps.read(pid: h.pid)
        let command = ShimCollection.commandLine(of: h.pid)
        let reader = RingReader(mapping: h.mapping)
        do {
            try reader.attach(mode: .launch)
        } catch {
            log("cannot follow pid \(h.pid): \(error.description)")
            return
        }
        let ring = RingSource(reader: reader, pid: h.pid, program: nil, command: command, maps: maps, parent: parent)
        do { try ring.begin(into: tracker) } catch { return }
        let exitFD = h.pid == program.pid ? -1 : lr_pidfd_open(h.pid)
        let image = Image(ring: ring, exitFD: exitFD)
        images[h.pid] = image
        if h.pid == program.pid { currentCommand = command }
        // No pidfd: the process is already gone (or the kernel is older than 5.3 and it is not ours to wait for).
        if exitFD < 0 && h.pid != program.pid && !RingMapping.isAlive(pid: h.pid) {
            images[h.pid] = nil
            retire(image, tracker, end: .exited)
        }
    }

    /// Reads what an ended image committed, closes its space and keeps its ring's counters.
    private func retire(_ image: Image, _ tracker: Tracker, end: SpaceEnd) {
        do { try image.ring.finish(tracker: tracker, end: end) } catch { log("pid \(image.ring.pid): \(error)") }
        for (k, v) in image.ring.counters { endedCounters[k, default: 0] &+= v }
    }

    public func poll(into tracker: Tracker) throws -> Int {
        if !stopped { for h in listener.poll() { adopt(h, tracker) } }
        var n = 0
        for image in images.values { n += try image.ring.poll(into: tracker) }
        return n
    }

    public func pace(after events: Int, timeoutNs: UInt64) {
        if images.count == 1, let only = images.values.first { only.ring.pace(after: events, timeoutNs: timeoutNs) }
    }

    public func wait(timeoutNs: UInt64) {
        // One ring: sleep on its futex (its writers wake us). Several: a short nap, since a futex waits on one word.
        if images.count == 1, let only = images.values.first {
            only.ring.wait(timeoutNs: min(timeoutNs, 10_000_000))
        } else {
            var ts = timespec(tv_sec: 0, tv_nsec: Int(min(timeoutNs, 1_000_000)))
            nanosleep(&ts, nil)
        }
    }

    public func finished(tracker: Tracker) -> SessionEnd? {
        if programEnd == nil { programEnd = program.poll() }
        for (pid, image) in images where pid != program.pid && image.exited {
            images[pid] = nil
            retire(image, tracker, end: .exited)
        }
        guard let end = programEnd else { return nil }
        if let main = images.removeValue(forKey: program.pid) { retire(main, tracker, end: .exited) }
        guard images.isEmpty else { return nil }
        // A last look: a hand-over still in flight belongs to the session too.
        let late = listener.poll()
        if !late.isEmpty {
            for h in late { adopt(h, tracker) }
            return nil
        }
        return end
    }

    public func stop(tracker: Tracker) -> SessionEnd {
        stopped = true
        listener.close()
        for image in images.values {
            image.ring.reader.detach()
            tracker.closeSpace(image.ring.space, at: monotonicNow(), end: .detached)
            for (k, v) in image.ring.counters { endedCounters[k, default: 0] &+= v }
        }
        images.removeAll()
        return .detached
    }

    public var firstSignalStops: Bool { false }

    public func forward(signal: Int32) { program.send(signal) }

    public var rssPID: Int32? { program.pid }

    public var counters: [CounterName: UInt64] {
        var c = endedCounters
        for image in images.values { for (k, v) in image.ring.counters { c[k, default: 0] &+= v } }
        return c
    }
}

/// The parent pid from /proc/PID/stat.
enum ProcStat {
    static func parent(of pid: Int32) -> Int32? {
        guard let text = ProcFile.read("/proc/\(pid)/stat"), let paren = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: paren)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }
}
