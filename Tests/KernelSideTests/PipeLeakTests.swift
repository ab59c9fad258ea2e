import Foundation
import LeakReport
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// Kernel objects held by a process are outstanding kernel-slab blocks charged to the kernel stack that
/// allocated them; released ones are gone. Pipes make a good probe: every pipe(2) allocates the same
/// handful of objects through create_pipe_files.
final class PipeLeakTests: XCTestCase {
    static let pipes = 2000

    /// Opens `pipes` pipes once told to, optionally closes them all, says "ready", and waits.
    static let source = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        #include <sys/resource.h>
        int main(int argc, char **argv) {
            int n = atoi(argv[1]);
            int close_them = argc > 2 && strcmp(argv[2], "close") == 0;
            struct rlimit rl;
            getrlimit(RLIMIT_NOFILE, &rl);
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < (rlim_t)(2 * n + 16)) { fprintf(stderr, "RLIMIT_NOFILE too low\\n"); return 2; }
            char line[64];
            if (!fgets(line, sizeof line, stdin)) return 1;
            int (*fds)[2] = calloc(n, sizeof *fds);
            for (int i = 0; i < n; i++)
                if (pipe(fds[i])) { perror("pipe"); return 1; }
            if (close_them)
                for (int i = 0; i < n; i++) { close(fds[i][0]); close(fds[i][1]); }
            printf("ready\\n");
            fflush(stdout);
            fgets(line, sizeof line, stdin);
            return 0;
        }
        """

    /// A stack through create_pipe_files: how many blocks the session saw allocated there, and how many
    /// of the program's are outstanding at the end, as `leakreport top` reports them.
    struct PipeStack {
        var frames: [String]
        var allocated: UInt64
        var outstanding: [LiveBlock]
    }

    /// Runs the pipe program under `leakcollect --kernel --pid` or `--comm` (with `extra` options), stops
    /// the collector while the program still runs, and reads the session back through `leakreport top`'s report.
    private func collect(closing: Bool, extra: [String] = [], keepSessionAt kept: URL? = nil) throws -> (
        report: TopReport, pid: Int32, stacks: [PipeStack], reader: SessionReader
    ) {
        try KernelTestSupport.requireRoot("the pipe test")
        let program = try CProgram.build("pipeholder", source: Self.source)
        let dir = try KernelTestSupport.scratchDirectory("pipes")
        defer { try? FileManager.default.removeItem(at: dir) }
        let session = dir.appendingPathComponent("pipes.leaks")

        let holder = try RunningProcess([program.path, String(Self.pipes)] + (closing ? ["close"] : []))
        defer { holder.closeInput(); _ = try? holder.wait() }
        // One test selects the program by pid, the other by command name.
        let filter = closing ? ["--pid", String(holder.pid)] : ["--comm", "pipeholder"]
        let collector = try KernelTestSupport.startCollector(session: session, filter + ["--kind", "slab", "--interval", "0.2"] + extra)
        holder.send("go")
        try holder.waitFor("ready")
        // Closed pipes free their dentry and inode after an RCU grace period; give it time.
        if closing { usleep(1_500_000) }
        try KernelTestSupport.stop(collector)
        if let kept { try FileManager.default.copyItem(at: session, to: kept) }

        let reader = try SessionReader(path: session.path)
        let report = try TopReport.build(reader, options: TopOptions(top: 100_000, filter: LiveFilter(kinds: [.kernelSlab]), addresses: true))
        return (report, holder.pid, try Self.pipeStacks(reader, report: report, pid: holder.pid), reader)
    }

    /// The stacks through create_pipe_files of the process `pid`: how many blocks the session saw
    /// allocated there, and how many are outstanding at the end, as `leakreport top` reports them.
    static func pipeStacks(_ reader: SessionReader, report: TopReport, pid: Int32) throws -> [PipeStack] {
        let live = Dictionary(report.stacks.map { ($0.stackID, $0.liveBlocks) }, uniquingKeysWith: +)
        var stacks: [PipeStack] = []
        let totals = try reader.totals().filter { $0.kind == .kernelSlab }
        let rows = try reader.stacks(Set(totals.map(\.stackID)))
        for t in totals {
            // Each task's allocations from a kernel stack are a stack of their own.
            guard let s = rows[t.stackID], s.taskPid == pid, s.frames.contains(where: { $0.function == "create_pipe_files" }) else { continue }
            stacks.append(PipeStack(frames: s.frames.compactMap(\.function), allocated: t.totalBlocks, outstanding: live[t.stackID] ?? []))
        }
        return stacks
    }

    /// The allocation sites that ran once per pipe (the inode, both files, the dentry, pipe_inode_info
    /// and its buffers, their security blobs). Slab growth on the way (a new slab's metadata) also
    /// passes through create_pipe_files, but a few times, not once per pipe, and it stays with the cache.
    static func perPipe(_ stacks: [PipeStack]) -> [PipeStack] { stacks.filter { $0.allocated >= UInt64(Self.pipes) } }

    func testHeldPipesAreOutstandingThroughCreatePipeFiles() throws {
        let (report, _, stacks, _) = try collect(closing: false)
        XCTAssertEqual(report.info.mode, .kernel)
        XCTAssertEqual(report.info.end, .stopped)
        XCTAssertEqual(report.lostEvents, 0)
        let sites = Self.perPipe(stacks)
        XCTAssertGreaterThanOrEqual(sites.count, 5, "allocation sites through create_pipe_files: \(stacks.map(\.frames))")
        for s in sites {
            // One outstanding block per pipe at every such site.
            XCTAssertEqual(s.outstanding.count, Self.pipes, "stack \(s.frames)")
            XCTAssertTrue(s.outstanding.allSatisfy { $0.function == .kmalloc || $0.function == .kmemCacheAlloc })
        }
        XCTAssertTrue(sites.contains { $0.frames.contains("alloc_pipe_info") }, "pipe_inode_info's allocation is missing")
        // The tracing machinery's own frames (the BPF program, bpf_trace_run*) are cut from the stacks.
        for s in stacks {
            XCTAssertFalse(s.frames.contains { $0.hasPrefix("bpf_") || $0.hasPrefix("__bpf_trace") }, "\(s.frames)")
        }
    }

    func testClosedPipesAreGone() throws {
        let (report, _, stacks, _) = try collect(closing: true)
        XCTAssertEqual(report.info.end, .stopped)
        XCTAssertEqual(report.lostEvents, 0)
        let sites = Self.perPipe(stacks)
        XCTAssertGreaterThanOrEqual(sites.count, 5, "the pipes' allocations were not seen: \(stacks.map(\.frames))")
        for s in sites {
            XCTAssertEqual(s.outstanding.count, 0, "blocks still outstanding after every pipe was closed: \(s.frames)")
        }
    }

    /// --depth N applies in kernel mode: the tracker cuts every kernel stack to its N innermost frames
    /// and marks it truncated, and cut stacks that become equal merge, so no allocation is lost.
    func testDepthCutsKernelStacks() throws {
        let (report, pid, _, reader) = try collect(closing: false, extra: ["--depth", "3"])
        XCTAssertEqual(report.info.end, .stopped)
        let totals = try reader.totals().filter { $0.kind == .kernelSlab }
        let rows = try reader.stacks(Set(totals.map(\.stackID)))
        XCTAssertFalse(rows.isEmpty)
        for s in rows.values {
            XCTAssertLessThanOrEqual(s.frames.count, 3, "\(s.frames.compactMap(\.function))")
        }
        // Pipe allocations are far deeper than three frames (syscall entry, do_pipe2, create_pipe_files, ...).
        let mine = totals.filter { rows[$0.stackID]?.taskPid == pid }
        XCTAssertTrue(mine.allSatisfy { rows[$0.stackID]?.truncated == true }, "a stack of the holder is not marked truncated")
        // The holder still holds a block per pipe at each of the five or more per-pipe sites, now under fewer stacks.
        let outstanding = mine.reduce(0) { $0 + $1.blocks }
        XCTAssertGreaterThanOrEqual(outstanding, UInt64(5 * Self.pipes))
        XCTAssertEqual(report.lostEvents, 0)
    }

    /// The analyses read a kernel session as they read a user one: folded stacks and pprof weigh each
    /// kernel stack by what `top` reports outstanding, the peak holds at least what the end holds, and
    /// a session diffed with itself has no stack that changed.
    func testTheAnalysesReadAKernelSession() throws {
        let dir = try KernelTestSupport.scratchDirectory("pipes-analyses")
        defer { try? FileManager.default.removeItem(at: dir) }
        let session = dir.appendingPathComponent("kept.leaks")
        let (report, _, stacks, _) = try collect(closing: false, keepSessionAt: session)
        let lr = try BuildProducts.leakreport
        func run(_ args: [String]) throws -> String {
            let r = try Run.capture([lr] + args)
            XCTAssertEqual(r.status, 0, "leakreport \(args.joined(separator: " ")): \(r.stderr)")
            return r.stdout
        }
        let sites = Self.perPipe(stacks)
        XCTAssertGreaterThanOrEqual(sites.count, 5)

        // folded: one line per stack, kernel frames marked, the weights adding up to top's outstanding bytes.
        let folded = try run(["folded", session.path, "--kind", "slab"]).split(separator: "\n")
        let weights = folded.compactMap { line in line.split(separator: " ").last.flatMap { UInt64($0) } }
        XCTAssertEqual(weights.count, folded.count, "every folded line ends in its weight")
        XCTAssertEqual(weights.reduce(0, +), report.outstandingBytes)
        XCTAssertTrue(folded.contains { $0.contains("create_pipe_files_[k]") && $0.contains("alloc_pipe_info_[k]") }, "\(folded.prefix(5))")

        // peak: at least every block held at the end, and a per-pipe stack among those holding it.
        let peakData = Data(try run(["peak", session.path, "--kind", "slab", "--format", "json", "--top", "1000"]).utf8)
        let peak = try XCTUnwrap(try JSONSerialization.jsonObject(with: peakData) as? [String: Any])
        let peakBytes = try XCTUnwrap((peak["peak"] as? [String: Any])?["bytes"] as? UInt64)
        XCTAssertGreaterThanOrEqual(peakBytes, report.outstandingBytes)
        let peakStacks = try XCTUnwrap(peak["stacks"] as? [[String: Any]])
        let functions = peakStacks.map { (($0["frames"] as? [[String: Any]]) ?? []).compactMap { $0["function"] as? String } }
        XCTAssertTrue(functions.contains { $0.contains("alloc_pipe_info") }, "\(functions.prefix(3))")

        // pprof, read by Go's own tool: the in-use bytes of the pipe buffers' allocation site are there.
        let pprof = dir.appendingPathComponent("kernel.pb.gz").path
        _ = try run(["pprof", session.path, "--kind", "slab", "-o", pprof])
        let go = try XCTUnwrap(Toolchains.find("go", extra: ["/usr/lib/go/bin"]), "go is missing: tools/setup.sh installs golang-go")
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = dir.path
        let top = try Run.capture([go, "tool", "pprof", "-top", "-sample_index=inuse_space", pprof], environment: env, timeout: 120)
        XCTAssertEqual(top.status, 0, top.stderr)
        XCTAssertTrue(top.stdout.contains("alloc_pipe_info"), top.stdout)

        // growth and churn: what they rank is of the kind asked for, and churn counts every allocation.
        let growthData = Data(try run(["growth", session.path, "--kind", "slab", "--format", "json", "--top", "1000"]).utf8)
        let growth = try XCTUnwrap(try JSONSerialization.jsonObject(with: growthData) as? [String: Any])
        let growthKinds = Set(((growth["stacks"] as? [[String: Any]]) ?? []).compactMap { $0["kind"] as? String })
        XCTAssertTrue(growthKinds.isSubset(of: ["kernel-slab"]), "\(growthKinds)")
        // Every per-pipe site has a series to score (whether a one-step rise scores above 0 depends on
        // where the step falls among the intervals).
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(growth["scored_stacks"] as? Int), sites.count)
        let churnData = Data(try run(["churn", session.path, "--kind", "slab", "--format", "json"]).utf8)
        let churn = try XCTUnwrap(try JSONSerialization.jsonObject(with: churnData) as? [String: Any])
        let allocations = try XCTUnwrap(churn["total_allocations"] as? UInt64)
        XCTAssertGreaterThanOrEqual(allocations, sites.reduce(0) { $0 + $1.allocated })

        // diff with itself: no stack changed.
        let diffData = Data(try run(["diff", session.path, session.path, "--kind", "slab", "--format", "json"]).utf8)
        let diff = try XCTUnwrap(try JSONSerialization.jsonObject(with: diffData) as? [String: Any])
        let totals = try XCTUnwrap(diff["totals"] as? [String: Any])
        XCTAssertEqual(totals["delta_bytes"] as? Int, 0)
        XCTAssertEqual(totals["new_bytes"] as? UInt64, report.outstandingBytes)
        XCTAssertEqual((diff["stacks"] as? [[String: Any]])?.count, 0, "a diff lists changed stacks only")
    }
}
