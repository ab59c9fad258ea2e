import Foundation
import LeakReport
import SessionStore
import TestSupport
import Vocabulary
import XCTest

/// `--sample-bytes N`: the shim records an allocation under N bytes only when a sample point of a Poisson
/// process over the allocated bytes falls in it, and the report scales each recorded block by its weight.
/// BPFSamplingTests runs the same tests through uprobes (`--bpf`).
class SamplingTests: XCTestCase {
    /// 200,000 leaked 64-byte blocks, 10 leaked 1 MiB blocks, 200,000 freed 100-byte blocks. Built with
    /// -DWAIT_FOR_GO it prints "ready", allocates once a line arrives on stdin, prints "done" and waits for
    /// the end of its input: a program to attach to before it allocates.
    static let source = """
        #include <stdio.h>
        #include <stdlib.h>
        void *small_leak(void) { return malloc(64); } // SMALL-LEAK
        void *big_leak(void) { return malloc(1 << 20); } // BIG-LEAK
        void *churn(void) { return malloc(100); }
        int main(void) {
        #ifdef WAIT_FOR_GO
            char line[16];
            printf("ready\\n");
            fflush(stdout);
            if (!fgets(line, sizeof line, stdin)) return 1;
        #endif
            for (int i = 0; i < 200000; i++) small_leak();
            for (int i = 0; i < 10; i++) big_leak();
            for (int i = 0; i < 200000; i++) free(churn());
        #ifdef WAIT_FOR_GO
            printf("done\\n");
            fflush(stdout);
            while (fgets(line, sizeof line, stdin)) {}
        #endif
            return 0;
        }
        """

    /// The figures `source` must give at `--sample-bytes 4096`, whichever way it was collected.
    static func assertEstimates(_ report: TopJSON, program: CProgram, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(report.session.samplingIntervalBytes, 4096, file: file, line: line)
        XCTAssertEqual(report.totals.lostEvents, 0, file: file, line: line)
        // Blocks of at least the interval are always recorded: exact.
        let big = try XCTUnwrap(report.stack(function: "big_leak"), "\(report.stacks.map { $0.userFrame?.function ?? "?" })", file: file, line: line)
        XCTAssertEqual(big.bytes, 10 << 20, file: file, line: line)
        XCTAssertEqual(big.blocks, 10, file: file, line: line)
        XCTAssertEqual(big.userFrame?.line, try program.line(of: "BIG-LEAK"), file: file, line: line)
        // 200,000 blocks of 64 bytes, each recorded with probability 1 - exp(-64/4096) (about 1.55 %): about
        // 3,100 recorded, so the estimate's standard deviation is about 1.8 %; 10 % is more than five of them.
        let small = try XCTUnwrap(report.stack(function: "small_leak"), file: file, line: line)
        XCTAssertEqual(Double(small.bytes), 12_800_000, accuracy: 1_280_000, "estimated bytes", file: file, line: line)
        XCTAssertEqual(Double(small.blocks), 200_000, accuracy: 20_000, "estimated blocks", file: file, line: line)
        XCTAssertEqual(small.userFrame?.line, try program.line(of: "SMALL-LEAK"), file: file, line: line)
        // Freed blocks leave nothing behind, sampled or not.
        XCTAssertNil(report.stack(function: "churn"), file: file, line: line)
        // Far fewer records than allocations: that is the point.
        let events = try XCTUnwrap(report.counters?["events"], file: file, line: line)
        XCTAssertLessThan(events, 40_000, "events recorded for 400,010 allocations", file: file, line: line)
    }

    func testSampledEstimatesAreWithinTheirToleranceAndLargeBlocksExact() throws {
        let program = try CProgram.build("sampled", source: Self.source)
        let run = try Pipeline.collect(program, extra: ["--sample-bytes", "4096"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        try Self.assertEstimates(try Pipeline.top(run.session), program: program)
        let text = try Pipeline.text(run.session)
        XCTAssertTrue(
            text.contains("sampled: allocations under 4096 bytes were sampled by bytes (mean interval 4096); the figures are estimates, larger blocks are exact\n"),
            text)
    }

    /// `--sample` is `--sample-bytes 512K`: every block here is under it, the big ones are exact.
    func testSampleFlagIsTheDefaultInterval() throws {
        let program = try CProgram.build("sampled_default", source: Self.source)
        let run = try Pipeline.collect(program, extra: ["--sample"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        XCTAssertEqual(report.session.samplingIntervalBytes, 512 << 10)
        XCTAssertEqual(report.totals.lostEvents, 0)
        let big = try XCTUnwrap(report.stack(function: "big_leak"))
        XCTAssertEqual(big.bytes, 10 << 20)
        XCTAssertEqual(big.blocks, 10)
        // 12.8 MB of 64-byte blocks at a mean interval of 512 KiB: about 24 sample points fall in them.
        let events = try XCTUnwrap(report.counters?["events"])
        XCTAssertLessThan(events, 1_000, "events recorded for 400,010 allocations")
    }

    /// realloc under sampling: a block's free is recorded only if the block was, and its replacement is
    /// decided by its own size (the free is pending only when a recorded block follows).
    func testReallocatedBlocksAreEstimatedAndFreedOnesLeaveNothing() throws {
        let program = try CProgram.build(
            "sampled_realloc",
            source: """
                #include <stdlib.h>
                void *grown_leak(void) { char *p = malloc(32); p[0] = 1; return realloc(p, 64); } // GROWN-LEAK
                void *big_grown_leak(void) { return realloc(malloc(16), 1 << 20); } // BIG-GROWN
                void grown_churn(void) { char *p = malloc(32); p[0] = 1; free(realloc(p, 48)); }
                int main(void) {
                    for (int i = 0; i < 200000; i++) grown_leak();
                    for (int i = 0; i < 10; i++) big_grown_leak();
                    for (int i = 0; i < 100000; i++) grown_churn();
                    return 0;
                }
                """)
        let run = try Pipeline.collect(program, extra: ["--sample-bytes", "4096"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        XCTAssertEqual(report.totals.lostEvents, 0)
        let big = try XCTUnwrap(report.stack(function: "big_grown_leak"), "\(report.stacks.map { $0.userFrame?.function ?? "?" })")
        XCTAssertEqual(big.bytes, 10 << 20)
        XCTAssertEqual(big.blocks, 10)
        XCTAssertEqual(big.userFrame?.line, try program.line(of: "BIG-GROWN"))
        // 200,000 blocks of 64 bytes, sampled as in the test above: within 10 %. Their 32-byte originals
        // were freed by the realloc, so nothing of them remains.
        let grown = try XCTUnwrap(report.stack(function: "grown_leak"))
        XCTAssertEqual(Double(grown.bytes), 12_800_000, accuracy: 1_280_000, "estimated bytes")
        XCTAssertEqual(Double(grown.blocks), 200_000, accuracy: 20_000, "estimated blocks")
        XCTAssertEqual(grown.userFrame?.line, try program.line(of: "GROWN-LEAK"))
        XCTAssertEqual(report.stacks.reduce(0) { $0 + $1.blocks }, big.blocks + grown.blocks, "nothing else outstanding")
        XCTAssertNil(report.stack(function: "grown_churn"))
    }

    func testBadSampleBytesIsOneLine() throws {
        let r = try Run.capture([try BuildProducts.leakcollect] + Pipeline.modeOptions + ["--sample-bytes", "0", "--", "/bin/true"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "leakcollect: --sample-bytes must be between 1 and 1T, got 0\n")
        let both = try Run.capture([try BuildProducts.leakcollect] + Pipeline.modeOptions + ["--sample", "--sample-bytes", "4K", "--", "/bin/true"])
        XCTAssertEqual(both.status, 1)
        XCTAssertEqual(both.stderr, "leakcollect: give --sample or --sample-bytes N, not both\n")
    }
}

/// The same through BPF uprobes: the program decides at malloc's entry from a per-thread countdown,
/// keeps a set of the sampled addresses, and the collector weighs each block as in shim mode.
final class BPFSamplingTests: SamplingTests {
    override func setUpWithError() throws {
        try BPFModeSupport.require()
        Pipeline.modeOptions = ["--bpf"]
    }

    override func tearDown() { Pipeline.modeOptions = [] }

    // Declared here so that test discovery on Linux lists the inherited tests for this class too.
    override func testSampledEstimatesAreWithinTheirToleranceAndLargeBlocksExact() throws {
        try super.testSampledEstimatesAreWithinTheirToleranceAndLargeBlocksExact()
    }
    override func testSampleFlagIsTheDefaultInterval() throws { try super.testSampleFlagIsTheDefaultInterval() }
    override func testBadSampleBytesIsOneLine() throws { try super.testBadSampleBytesIsOneLine() }
    override func testReallocatedBlocksAreEstimatedAndFreedOnesLeaveNothing() throws {
        try super.testReallocatedBlocksAreEstimatedAndFreedOnesLeaveNothing()
    }

    /// A plain --attach to a process without the shim picks BPF and samples as asked.
    func testPlainAttachSamplesThroughBPF() throws {
        Pipeline.modeOptions = []
        let program = try CProgram.build("sampled_attach", source: Self.source, extraFlags: ["-DWAIT_FOR_GO"])
        let app = try RunningProcess([program.path])
        defer { app.signal(SIGKILL) }
        try app.waitFor("ready")
        let session = Pipeline.sessionPath("sampled-attach")
        let collector = try RunningProcess([
            try BuildProducts.leakcollect, "--attach", String(app.pid), "--sample-bytes", "4096", "--quiet", "-o", session,
        ])
        defer { collector.signal(SIGKILL) }
        try collector.waitFor("through BPF uprobes; Ctrl-C to detach", inStderr: true)
        XCTAssertTrue(collector.stderr.contains("has no leakshim ring: tracing it through BPF uprobes instead"), collector.stderr)
        app.send("go")
        try app.waitFor("done", timeout: 120)
        collector.signal(SIGINT)
        let end = try collector.wait(timeout: 60)
        XCTAssertEqual(end.status, 0, collector.stderr)
        XCTAssertTrue(app.process.isRunning, "detaching must leave the program running")
        let report = try Pipeline.top(session)
        XCTAssertEqual(report.session.mode, "bpf")
        try Self.assertEstimates(report, program: program)
    }

    /// The shim's sampling is fixed when the program starts: an attach through its ring cannot sample.
    func testAttachThroughTheShimRefusesSampling() throws {
        Pipeline.modeOptions = []
        let program = try CProgram.build("sampled_shim_attach", source: Self.source, extraFlags: ["-DWAIT_FOR_GO"])
        let app = try RunningProcess([program.path], environment: ["LD_PRELOAD": try BuildProducts.shim])
        defer { app.signal(SIGKILL) }
        try app.waitFor("ready")
        let r = try Run.capture([try BuildProducts.leakcollect, "--attach", String(app.pid), "--sample-bytes", "4096", "-o", Pipeline.sessionPath("refused")])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(
            r.stderr,
            "leakcollect: pid \(app.pid) has the shim, whose sampling is set when it starts (LEAKSHIM_SAMPLE_BYTES): attach without --sample-bytes, or add --bpf\n")
    }
}
