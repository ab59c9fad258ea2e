import Foundation
import LeakReport
import SessionStore
import TestSupport
import Vocabulary
import XCTest

/// `--sample-bytes N`: the shim records an allocation under N bytes only when a sample point of a Poisson
/// process over the allocated bytes falls in it, and the report scales each recorded block by its weight.
final class SamplingTests: XCTestCase {
    func testSampledEstimatesAreWithinTheirToleranceAndLargeBlocksExact() throws {
        let program = try CProgram.build(
            "sampled",
            source: """
                #include <stdlib.h>
                void *small_leak(void) { return malloc(64); } // SMALL-LEAK
                void *big_leak(void) { return malloc(1 << 20); } // BIG-LEAK
                void *churn(void) { return malloc(100); }
                int main(void) {
                    for (int i = 0; i < 200000; i++) small_leak();
                    for (int i = 0; i < 10; i++) big_leak();
                    for (int i = 0; i < 200000; i++) free(churn());
                    return 0;
                }
                """)
        let run = try Pipeline.collect(program, extra: ["--sample-bytes", "4096"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        XCTAssertEqual(report.session.samplingIntervalBytes, 4096)
        XCTAssertEqual(report.totals.lostEvents, 0)
        // Blocks of at least the interval are always recorded: exact.
        assertLeak(report, function: "big_leak", bytes: 10 << 20, blocks: 10, program: program, marker: "BIG-LEAK")
        // 200,000 blocks of 64 bytes, each recorded with probability 1 - exp(-64/4096) (about 1.55 %): about
        // 3,100 recorded, so the estimate's standard deviation is about 1.8 %; 10 % is more than five of them.
        let small = try XCTUnwrap(report.stack(function: "small_leak"))
        XCTAssertEqual(Double(small.bytes), 12_800_000, accuracy: 1_280_000, "estimated bytes")
        XCTAssertEqual(Double(small.blocks), 200_000, accuracy: 20_000, "estimated blocks")
        XCTAssertEqual(small.userFrame?.line, try program.line(of: "SMALL-LEAK"))
        // Freed blocks leave nothing behind, sampled or not.
        XCTAssertNil(report.stack(function: "churn"))
        // Far fewer records than allocations: that is the point.
        let events = try XCTUnwrap(report.counters?["events"])
        XCTAssertLessThan(events, 40_000, "events recorded for 400,010 allocations")
        let text = try Pipeline.text(run.session)
        XCTAssertTrue(
            text.contains("sampled: allocations under 4096 bytes were sampled by bytes (mean interval 4096); the figures are estimates, larger blocks are exact\n"),
            text)
    }

    func testBadSampleBytesIsOneLine() throws {
        let r = try Run.capture([try BuildProducts.leakcollect, "--sample-bytes", "0", "--", "/bin/true"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "leakcollect: --sample-bytes must be between 1 and 1T, got 0\n")
    }
}
