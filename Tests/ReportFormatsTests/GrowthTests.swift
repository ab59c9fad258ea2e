import ReportFormats
import XCTest

/// Series shaped like the programs the issue names, one point a second for a minute.
final class GrowthTests: XCTestCase {
    static let seconds = 60
    static func series(_ bytes: (Int) -> UInt64) -> [SeriesPoint] {
        (0..<seconds).map { SeriesPoint(timeNs: UInt64($0) * 1_000_000_000, bytes: bytes($0)) }
    }

    /// 4 KiB a second, never freed.
    static let drip = series { UInt64($0) * 4096 }
    /// A 20 MiB cache filled in 15 s (340 times the drip's rate), then full; entries are evicted and
    /// refilled at the same size.
    static let cache = series { t in t < 15 ? UInt64(t) * 1_398_101 : 20_971_515 - (t % 2 == 0 ? 0 : 4096) }
    /// A buffer that grows 512 KiB a second (128 times the drip's rate) for 9 s and is then freed, six
    /// times; the minute ends near its top, which is when it looks most like a leak.
    static let buffer = series { t in UInt64(t % 10) * 524_288 }
    /// 12 KiB every third second: the same rate as the drip, in steps.
    static let steppedDrip = series { t in UInt64(t / 3) * 12288 }

    func stack(_ name: String, _ series: [SeriesPoint]) -> ProfileStack {
        ProfileStack(frames: [ProfileFrame(address: 0x1000, function: name)], inUseBytes: series.last?.bytes ?? 0, inUseBlocks: 1, series: series)
    }

    func testDripOutranksCacheAndBuffer() {
        let p = Profile(stacks: [stack("cache", Self.cache), stack("buffer", Self.buffer), stack("drip", Self.drip), stack("stepped", Self.steppedDrip)])
        let ranking = GrowthRanking(p)
        let names = ranking.entries.map { p.stacks[$0.stack].frames[0].function ?? "" }
        XCTAssertEqual(names.prefix(2).sorted(), ["drip", "stepped"], "\(ranking.entries.map { ($0.stack, $0.growth) })")
        // The cache plateaued for 45 s after 14 s of filling: it is not growing, so it is not ranked at all.
        XCTAssertFalse(names.contains("cache"))
        let drip = GrowthScore(Self.drip), buffer = GrowthScore(Self.buffer)
        XCTAssertGreaterThan(drip.score, 10 * buffer.score)
    }

    func testDripFigures() {
        let g = GrowthScore(Self.drip)
        XCTAssertEqual(g.rate, 4096, accuracy: 1e-9)
        XCTAssertEqual(g.growingForNs, 59_000_000_000)
        XCTAssertEqual(g.fit, 1, accuracy: 1e-12)
        XCTAssertEqual(g.grewShare, 1)
        XCTAssertEqual(g.retention, 1)
        XCTAssertEqual(g.recency, 1)
        XCTAssertEqual(g.coverage, 1)
        XCTAssertEqual(g.score, 4096, accuracy: 1e-9)
    }

    func testSteppedDripKeepsItsRateAndShowsFewerGrowingIntervals() {
        let g = GrowthScore(Self.steppedDrip)
        // Growth starts at 2 s (the last second at 0 bytes): 19 steps of 12 KiB in the 57 s from there,
        // the last at 57 s, two seconds before the end.
        XCTAssertEqual(g.rate, 4096, accuracy: 1e-9)
        XCTAssertEqual(g.growingForNs, 55_000_000_000)
        XCTAssertEqual(g.grewShare, 1.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(g.recency, 1 - 2.0 / 55.0, accuracy: 1e-12)
        XCTAssertGreaterThan(g.fit, 0.99)
    }

    func testBufferFiguresExplainItsLowScore() {
        let g = GrowthScore(Self.buffer)
        // Its retained bytes start at the last emptying (50 s) and reach 4.5 MiB at 59 s.
        XCTAssertEqual(g.growingForNs, 9_000_000_000)
        XCTAssertEqual(g.rate, 9 * 524_288 / 9, accuracy: 1e-9)
        XCTAssertEqual(g.retention, 1.0 / 6.0, accuracy: 1e-12)
        XCTAssertEqual(g.coverage, 9.0 / 59.0, accuracy: 1e-12)
        XCTAssertLessThan(g.fit, 0.1)
    }

    func testCacheThatPlateausScoresZero() {
        let g = GrowthScore(Self.cache)
        XCTAssertEqual(g.recency, 0)
        XCTAssertEqual(g.score, 0)
    }

    func testFlatShrinkingAndShortSeriesScoreZero() {
        XCTAssertEqual(GrowthScore(Self.series { _ in 1 << 20 }).score, 0)
        XCTAssertEqual(GrowthScore(Self.series { t in UInt64(60 - t) * 4096 }).score, 0)
        XCTAssertEqual(GrowthScore([SeriesPoint(timeNs: 0, bytes: 5)]), .none)
        XCTAssertEqual(GrowthScore([]), .none)
    }

    func testSparkline() {
        XCTAssertEqual(Sparkline.render([0, 1, 2, 3, 4, 5, 6, 7]), "▁▂▃▄▅▆▇█")
        XCTAssertEqual(Sparkline.render([5, 5, 5]), "███")
        XCTAssertEqual(Sparkline.render([0, 0]), "▁▁")
        // 60 points into 12 columns: each column shows the largest value of its 5 seconds.
        XCTAssertEqual(Sparkline.render(Self.buffer, width: 12), "▄█▄█▄█▄█▄█▄█")
        // 60 points into 8 columns of 7 or 8: the first column's top is 6 s in, 6/59 of the end.
        XCTAssertEqual(Sparkline.render(Self.drip, width: 8), "▂▃▃▄▅▆▇█")
        XCTAssertEqual(Sparkline.render([UInt64](), width: 8), "")
    }
}
