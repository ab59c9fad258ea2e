import Foundation
import LeakReport
import ReportFormats
import TestSupport
import XCTest

/// `leakreport growth`, `peak` and `churn` (and `top --sort growth`, `top --temporary`) on real programs.
final class GrowthPeakChurnTests: XCTestCase {
    /// A slow steady drip, a cache that fills and plateaus (larger in the end), and a buffer that
    /// grows and is released again and again: only the drip looks like a leak.
    func testSteadyDripRanksAboveAPlateauingCacheAndASawtoothBuffer() throws {
        let prog = try CProgram.build(
            "growth_shapes",
            source: """
                #include <stdlib.h>
                #include <unistd.h>
                static void *kept[100], *cache[100];
                static char *buf;
                void drip(int i) { kept[i] = malloc(2048); } // GROWTH-DRIP
                void cache_fill(int i) { cache[i] = malloc(8192); }
                void buffer_grow(size_t n) { buf = realloc(buf, n); }
                void buffer_reset(void) { free(buf); buf = NULL; }
                int main(void) {
                    for (int step = 0; step < 60; step++) {
                        drip(step);
                        if (step < 10) for (int k = 0; k < 6; k++) cache_fill(step * 6 + k);
                        buffer_grow((size_t)(step % 10 + 1) * 16384);
                        if (step % 10 == 9) buffer_reset();
                        usleep(50000);
                    }
                    return 0;
                }
                """)
        let run = try Pipeline.collect(prog, extra: ["--interval", "0.1"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)

        let growth = try Analyses.json(GrowthJSON.self, ["growth", run.session, "--top", "50"])
        let score = { (fn: String) -> Double in growth.stacks.first { Analyses.userFunction($0.frames) == fn }?.score ?? 0 }
        XCTAssertEqual(growth.stacks.first.flatMap { Analyses.userFunction($0.frames) }, "drip", "ranking: \(growth.stacks.map { (Analyses.userFunction($0.frames) ?? "?", $0.score) })")
        guard let drip = growth.stacks.first else { return }
        XCTAssertEqual(drip.bytes, 60 * 2048)
        XCTAssertEqual(drip.blocks, 60)
        XCTAssertGreaterThan(drip.fit, 0.9)
        // About 2 KiB every 50 ms: 40 KiB/s, less the collector's interval rounding.
        XCTAssertEqual(drip.rateBytesPerSecond, 40960, accuracy: 12000)
        XCTAssertLessThan(score("cache_fill"), drip.score / 10)
        XCTAssertLessThan(score("buffer_grow"), drip.score / 10)
        // The series is there to plot: rising, ending at what the stack holds.
        XCTAssertGreaterThan(drip.series.count, 10)
        XCTAssertEqual(drip.series.last?.bytes, 60 * 2048)
        XCTAssertEqual(drip.series.map(\.bytes), drip.series.map(\.bytes).sorted())
        XCTAssertFalse(drip.sparkline.isEmpty)

        let text = try Analyses.run(["growth", run.session])
        XCTAssertTrue(text.contains("drip+0x"), text)
        XCTAssertTrue(text.contains("▁") || text.contains("█"), text)

        // top --sort growth uses the same score.
        let top = try Pipeline.top(run.session, ["--sort", "growth"])
        XCTAssertEqual(top.stacks.first?.userFrame?.function, "drip")
        XCTAssertEqual(top.stacks.first?.growthScore ?? 0, drip.score, accuracy: drip.score * 0.01)
        XCTAssertTrue(try Pipeline.text(run.session, ["--sort", "growth"]).contains("(by growth score)"))
    }

    static let peakSource = """
        #include <signal.h>
        #include <stdlib.h>
        static void *blocks[100];
        static void *kept;
        void big(void) { for (int i = 0; i < 100; i++) blocks[i] = malloc(1 << 20); } // PEAK-BIG
        void release(void) { for (int i = 0; i < 100; i++) free(blocks[i]); }
        void small(void) { kept = malloc(1 << 20); } // PEAK-SMALL
        int main(int argc, char **argv) {
            (void)argv;
            big();
            release();
            small();
            if (argc > 1) raise(SIGKILL);
            return 0;
        }
        """

    private func assertPeak(_ session: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let peak = try Analyses.json(PeakJSON.self, ["peak", session])
        let mib: UInt64 = 1 << 20
        XCTAssertGreaterThanOrEqual(peak.peak.bytes, 100 * mib, file: file, line: line)
        XCTAssertLessThan(peak.peak.bytes, 100 * mib + 64 * 1024, "only the runtime's few small blocks beside", file: file, line: line)
        XCTAssertGreaterThanOrEqual(peak.nowBytes, mib, file: file, line: line)
        XCTAssertLessThan(peak.nowBytes, 2 * mib, file: file, line: line)
        XCTAssertEqual(peak.stacks.first.flatMap { Analyses.userFunction($0.frames) }, "big", file: file, line: line)
        XCTAssertEqual(peak.stacks.first?.bytes, 100 * mib, file: file, line: line)
        XCTAssertEqual(peak.stacks.first?.blocks, 100, file: file, line: line)
        XCTAssertFalse(peak.stacks.contains { Analyses.userFunction($0.frames) == "small" }, "small() allocated after the peak", file: file, line: line)
        XCTAssertEqual(peak.peak.kind, "heap", "no mmap here: the heap's peak is the peak", file: file, line: line)
        XCTAssertEqual(peak.kinds, [], "one kind: no line that would repeat the total", file: file, line: line)
        let text = try Analyses.run(["peak", session])
        XCTAssertTrue(text.contains("\t104857600 bytes in 100 allocations from stack\n"), text, file: file, line: line)
    }

    /// 100 MiB allocated and freed, then 1 MiB leaked: the peak is the 100 MiB, at the stack that held it.
    func testPeakIsExactAtTheStackThatHeldIt() throws {
        let prog = try CProgram.build("peak_exact", source: Self.peakSource)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        try assertPeak(run.session)
        // Kind alone: the heap's own peak, the same here.
        let heap = try Analyses.json(PeakJSON.self, ["peak", run.session, "--kind", "heap"])
        XCTAssertEqual(heap.peak.kind, "heap")
        XCTAssertEqual(heap.stacks.first?.bytes, 100 << 20)
    }

    /// The program is killed by SIGKILL (as the OOM killer kills) right after: the peak is still there.
    func testPeakSurvivesAProgramKilledBySIGKILL() throws {
        let prog = try CProgram.build("peak_killed", source: Self.peakSource)
        let run = try Pipeline.collect(prog, ["die"])
        XCTAssertEqual(run.result.status, 128 + SIGKILL, run.result.stderr)
        XCTAssertTrue(try Pipeline.text(run.session).contains("killed by signal 9"))
        try assertPeak(run.session)
    }

    /// heaptrack's temporaries (freed before the thread's next allocation) and lifetimes below a threshold.
    func testChurnCountsTemporaryAllocationsPerStack() throws {
        let prog = try CProgram.build(
            "churn_counts",
            source: """
                #include <stdlib.h>
                #include <unistd.h>
                static void *held[200], *slow_kept[50];
                void churn_site(void) { for (int i = 0; i < 1000; i++) { void *p = malloc(64); free(p); } } // CHURN
                void medium(void) {
                    for (int i = 0; i < 200; i++) held[i] = malloc(32);
                    for (int i = 0; i < 200; i++) free(held[i]);
                }
                void slow(void) {
                    for (int i = 0; i < 50; i++) slow_kept[i] = malloc(128);
                    usleep(60000);
                    for (int i = 0; i < 50; i++) free(slow_kept[i]);
                }
                // Frees carry no time: the collector dates them by its clock, so it must be following
                // the program (it is, 300 ms after the start) for lifetimes to be measured.
                int main(void) { usleep(300000); churn_site(); medium(); slow(); return 0; }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        func stack(_ r: ChurnJSON, _ fn: String) -> ChurnJSON.Stack? { r.stacks.first { Analyses.userFunction($0.frames) == fn } }

        let churn = try Analyses.json(ChurnJSON.self, ["churn", run.session, "--top", "100"])
        XCTAssertEqual(churn.stacks.first.flatMap { Analyses.userFunction($0.frames) }, "churn_site")
        XCTAssertEqual(stack(churn, "churn_site")?.temporaryBlocks, 1000)
        XCTAssertEqual(stack(churn, "churn_site")?.temporaryBytes, 64_000)
        XCTAssertEqual(stack(churn, "churn_site")?.allocatedBlocks, 1000)
        // Only the last of the 200 was freed before the next allocation.
        XCTAssertLessThanOrEqual(stack(churn, "medium")?.temporaryBlocks ?? 0, 1)
        XCTAssertLessThanOrEqual(stack(churn, "slow")?.temporaryBlocks ?? 0, 1)
        XCTAssertGreaterThanOrEqual(churn.totalAllocations, 1250)
        XCTAssertEqual(stack(churn, "churn_site")?.shareOfAll ?? 0, 1000 / Double(churn.totalAllocations), accuracy: 1e-9)

        let short = try Analyses.json(ChurnJSON.self, ["churn", run.session, "--shorter-than", "5ms", "--top", "100"])
        XCTAssertEqual(short.threshold, "shorter than 5 ms")
        XCTAssertEqual(stack(short, "churn_site")?.temporaryBlocks, 1000)
        XCTAssertEqual(stack(short, "medium")?.temporaryBlocks, 200)
        XCTAssertEqual(stack(short, "medium")?.temporaryBytes, 6400)
        XCTAssertNil(stack(short, "slow"), "lived 60 ms")

        // top --temporary is the same report.
        XCTAssertEqual(try Analyses.run(["top", run.session, "--temporary"]), try Analyses.run(["churn", run.session]))
        let text = try Analyses.run(["churn", run.session, "--shorter-than", "3ms"])
        XCTAssertTrue(text.hasPrefix("temporary allocations (shorter than 2 ms (the largest bucket bound up to 3 ms)): "), text)
        XCTAssertTrue(text.contains("\t1000 temporary allocations ("), text)
    }
}
