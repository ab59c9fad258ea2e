import Foundation
import ReportFormats
import XCTest

/// Figures from a corrupt session: sizes near 2^64, series out of time order, module indices that
/// point nowhere, addresses outside their module. Every format still produces its output.
final class HostileInputTests: XCTestCase {
    func hostile() -> Profile {
        var p = Fixtures.profile()
        p.stacks[0].inUseBytes = .max
        p.stacks[0].allocatedBytes = .max
        p.stacks[1].inUseBytes = .max - 1
        p.stacks[1].inUseBlocks = .max
        p.stacks[1].series = [SeriesPoint(timeNs: 5_000_000_000, bytes: 10), SeriesPoint(timeNs: 1_000_000_000, bytes: .max), SeriesPoint(timeNs: 3_000_000_000, bytes: 0)]
        p.stacks[2].frames[0].module = 99
        p.stacks[2].frames[1].address = 1
        return p
    }

    func testEveryFormatCopes() throws {
        let p = hostile()
        XCTAssertGreaterThan(try PprofEncoder().encode(p).count, 0)
        XCTAssertTrue(FoldedStacks.render(p).contains("__strdup"))
        XCTAssertTrue(FlameGraph.svg(p).contains("<title>all\n"))
        XCTAssertTrue(FlameGraph.svg(p, options: .init(mode: .growth, weight: .count)).contains("</svg>"))
        _ = GrowthTextRenderer.render(GrowthRanking(p), of: p)
        let d = ProfileDiff(base: p, new: Fixtures.profile())
        XCTAssertEqual(d.baseBytes, .max)
        XCTAssertFalse(DiffJSON(d).encoded().isEmpty)
        let live = LiveView.Model(profile: p, pid: 1, command: "x", rssBytes: nil, lostEvents: .max, elapsedNs: .max, selected: -5, expanded: true)
        XCTAssertEqual(live.outstandingBytes, .max)
        XCTAssertLessThanOrEqual(LiveView.render(live, width: 40, height: 3).count, 3)
        XCTAssertTrue(LiveView.render(live, width: 1, height: 0).allSatisfy { $0.count <= 20 })
    }

    /// Out-of-order points are put in time order before scoring.
    func testSeriesOutOfOrderIsScoredInTimeOrder() {
        let ordered = GrowthTests.drip
        XCTAssertEqual(GrowthScore(ordered.reversed()), GrowthScore(ordered))
    }
}
