import CLibBPF
import Foundation
import KernelSession
import LeakReport
import SessionStore
import TestSupport
import Vocabulary
import XCTest

/// Kernel mode's privilege boundaries over a collector's life: two collectors run at once without
/// disturbing each other, and one that is SIGKILLed leaves no BPF program, link or map behind (they are
/// file descriptors of the collector: the kernel detaches and frees them when it dies). The objects are
/// found by their ids in /proc/PID/fdinfo, so other BPF users on the machine do not matter.
final class CollectorLifecycleTests: XCTestCase {
    func testTwoCollectorsAtOnceBothSeeEveryPipe() throws {
        try KernelTestSupport.requireRoot("the two-collector test")
        let program = try CProgram.build("pipeholder", source: PipeLeakTests.source)
        let dir = try KernelTestSupport.scratchDirectory("two")
        defer { try? FileManager.default.removeItem(at: dir) }
        let holder = try RunningProcess([program.path, String(PipeLeakTests.pipes)])
        defer { holder.closeInput(); _ = try? holder.wait() }

        let sessions = [dir.appendingPathComponent("a.leaks"), dir.appendingPathComponent("b.leaks")]
        let collectors = try sessions.map {
            try KernelTestSupport.startCollector(session: $0, ["--pid", String(holder.pid), "--kind", "slab", "--interval", "0.2"])
        }
        XCTAssertNotEqual(try BPFObjects.of(collectors[0].pid).progs, [])
        XCTAssertTrue(try BPFObjects.of(collectors[0].pid).progs.isDisjoint(with: try BPFObjects.of(collectors[1].pid).progs))
        holder.send("go")
        try holder.waitFor("ready")
        for c in collectors { try KernelTestSupport.stop(c) }

        for session in sessions {
            let reader = try SessionReader(path: session.path)
            XCTAssertEqual(reader.info.end, .stopped)
            let report = try TopReport.build(reader, options: TopOptions(top: 100_000, filter: LiveFilter(kinds: [.kernelSlab]), addresses: true))
            XCTAssertEqual(report.lostEvents, 0)
            let sites = PipeLeakTests.perPipe(try PipeLeakTests.pipeStacks(reader, report: report, pid: holder.pid))
            XCTAssertGreaterThanOrEqual(sites.count, 5, "\(session.lastPathComponent): \(sites.map(\.frames))")
            for s in sites {
                XCTAssertEqual(s.outstanding.count, PipeLeakTests.pipes, "\(session.lastPathComponent): \(s.frames)")
            }
        }
    }

    func testSIGKILLedCollectorLeavesNoBPFProgramLinkOrMap() throws {
        try KernelTestSupport.requireRoot("the SIGKILL test")
        let dir = try KernelTestSupport.scratchDirectory("sigkill")
        defer { try? FileManager.default.removeItem(at: dir) }
        let session = dir.appendingPathComponent("killed.leaks")
        let collector = try KernelTestSupport.startCollector(session: session, ["--kind", "all", "--interval", "0.1"])
        let held = try BPFObjects.of(collector.pid)
        let tracepoints = try Self.tracepointsOnceWritten(session.path)
        // One link per attached program; every tracepoint has at least one, the free tracepoints two.
        XCTAssertGreaterThanOrEqual(held.links.count, tracepoints.filter { $0.status == .attached }.count)
        XCTAssertFalse(held.progs.isEmpty)
        XCTAssertFalse(held.maps.isEmpty)
        XCTAssertFalse(held.btfs.isEmpty)
        for id in held.links { XCTAssertTrue(BPFObjects.linkExists(id), "link \(id) is not loaded while the collector runs") }
        for id in held.progs { XCTAssertTrue(BPFObjects.progExists(id), "program \(id) is not loaded while the collector runs") }

        collector.signal(SIGKILL)
        let (_, signal) = try collector.wait()
        XCTAssertEqual(signal, SIGKILL)
        // The kernel drops a link's last reference from a work queue, so freeing follows the exit closely
        // but not at once: wait for it, as long as it takes up to a bound.
        let gone = BPFObjects.waitUntil(seconds: 30) {
            !held.links.contains(where: BPFObjects.linkExists) && !held.progs.contains(where: BPFObjects.progExists)
                && !held.maps.contains(where: BPFObjects.mapExists) && !held.btfs.contains(where: BPFObjects.btfExists)
        }
        XCTAssertTrue(gone, "still loaded after the collector died: links \(held.links.filter(BPFObjects.linkExists)), "
            + "programs \(held.progs.filter(BPFObjects.progExists)), maps \(held.maps.filter(BPFObjects.mapExists)), "
            + "BTF \(held.btfs.filter(BPFObjects.btfExists))")
        // No other process holds any of them either.
        XCTAssertTrue(try BPFObjects.holders(of: held).isEmpty)
        // What it had flushed is still a readable session.
        let reader = try SessionReader(path: session.path)
        XCTAssertEqual(reader.info.mode, .kernel)
        XCTAssertNil(reader.info.end)
    }

    /// The session's tracepoints table once the collector has written it (its first flush).
    private static func tracepointsOnceWritten(_ path: String) throws -> [TracepointRow] {
        var last: Error?
        // Loading and verifying the programs takes well under a second on a quiet machine, many on a busy one.
        for _ in 0..<300 {
            do {
                let rows = try SessionReader(path: path).tracepoints()
                if !rows.isEmpty { return rows }
            } catch {
                last = error
            }
            usleep(100_000)
        }
        throw TestSupportError("no tracepoints in \(path) after 30 s: \(last.map { "\($0)" } ?? "none written")")
    }
}

/// The BPF objects a process holds, read from /proc/PID/fdinfo (no bpftool), and whether an id is
/// still loaded in the kernel (libbpf's get-fd-by-id; ENOENT once the kernel freed it).
struct BPFObjects: Equatable {
    var progs: Set<UInt32> = []
    var links: Set<UInt32> = []
    var maps: Set<UInt32> = []
    var btfs: Set<UInt32> = []

    static func of(_ pid: Int32) throws -> BPFObjects {
        var out = BPFObjects()
        let fdDir = "/proc/\(pid)/fd"
        for fd in try FileManager.default.contentsOfDirectory(atPath: fdDir) {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(fd)"), target.hasPrefix("anon_inode:bpf") || target == "anon_inode:btf",
                let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8)
            else { continue }
            let fields = Dictionary(
                info.split(separator: "\n").compactMap { line -> (String, String)? in
                    let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    return parts.count == 2 ? (parts[0], parts[1]) : nil
                }, uniquingKeysWith: { a, _ in a })
            switch target {
            // The kernel names link descriptors bpf_link, the others bpf-prog and bpf-map.
            case "anon_inode:bpf_link", "anon_inode:bpf-link": if let id = fields["link_id"].flatMap(UInt32.init) { out.links.insert(id) }
            case "anon_inode:bpf-prog": if let id = fields["prog_id"].flatMap(UInt32.init) { out.progs.insert(id) }
            case "anon_inode:bpf-map": if let id = fields["map_id"].flatMap(UInt32.init) { out.maps.insert(id) }
            case "anon_inode:btf": if let id = fields["btf_id"].flatMap(UInt32.init) { out.btfs.insert(id) }
            default: break
            }
        }
        return out
    }

    /// Processes other than this one that hold any of `objects`.
    static func holders(of objects: BPFObjects) throws -> [Int32] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap(Int32.init).filter { pid in
            guard pid != getpid(), let held = try? of(pid) else { return false }
            return !held.progs.isDisjoint(with: objects.progs) || !held.links.isDisjoint(with: objects.links)
                || !held.maps.isDisjoint(with: objects.maps) || !held.btfs.isDisjoint(with: objects.btfs)
        }
    }

    static func progExists(_ id: UInt32) -> Bool { exists(bpf_prog_get_fd_by_id(id)) }
    static func linkExists(_ id: UInt32) -> Bool { exists(bpf_link_get_fd_by_id(id)) }
    static func mapExists(_ id: UInt32) -> Bool { exists(bpf_map_get_fd_by_id(id)) }
    static func btfExists(_ id: UInt32) -> Bool { exists(bpf_btf_get_fd_by_id(id)) }

    private static func exists(_ fd: Int32) -> Bool {
        if fd >= 0 {
            close(fd)
            return true
        }
        return errno != ENOENT
    }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass.
    static func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }
}
