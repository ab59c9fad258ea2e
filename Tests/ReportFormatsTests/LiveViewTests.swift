import ReportFormats
import XCTest

final class LiveViewTests: XCTestCase {
    func model(sort: LiveView.Sort = .bytes, expanded: Bool = false, selected: Int = 0) -> LiveView.Model {
        var p = Fixtures.profile()
        p.stacks[0].series = GrowthTests.drip
        p.stacks[1].series = GrowthTests.cache
        p.stacks[2].series = GrowthTests.steppedDrip
        return LiveView.Model(
            profile: p, pid: 4242, command: "./app --serve", rssBytes: 48 << 20, lostEvents: 3, elapsedNs: 59_000_000_000, sort: sort, selected: selected,
            expanded: expanded)
    }

    func testScreen() {
        let lines = LiveView.render(model(), width: 100, height: 12)
        XCTAssertEqual(
            lines,
            [
                "pid 4242 ./app --serve                                                                elapsed 59.0 s",
                "outstanding 5.3 MiB (peak 20 MiB)  RSS 48 MiB  lost_events 3  stacks 3",
                "total " + String(repeating: "x", count: 0) + lines[2].dropFirst(6),
                "",
                "      BYTES    BLOCKS        GROWTH  STACK (by bytes)",
                ">   4.0 MiB         4    +4.0 KiB/s  read_body < handle < main < [libc.so.6+0x51d90]",
                "    1.2 MiB         5             -  cache_put < main < [libc.so.6+0x51d90]",
                "    4.0 KiB        64    +3.7 KiB/s  __strdup < log_line < main",
                "b bytes  c count  g growth  p pause  up/down select  enter expand  q quit",
            ])
        // The total is the three series added up, one column a second: the cache's 20 MiB dominates after 15 s.
        XCTAssertEqual(lines[2].count, 6 + 60)
        XCTAssertTrue(lines[2].hasPrefix("total ▁"))
        XCTAssertTrue(lines[2].hasSuffix("█"))
    }

    func testSortExpandAndNarrowTerminal() {
        var m = model(sort: .growth, expanded: true)
        XCTAssertEqual(m.rows.map(\.stack), [0, 2, 1])
        m.sort = .count
        XCTAssertEqual(m.rows.map(\.stack), [2, 1, 0])
        m.sort = .growth
        m.paused = true
        let lines = LiveView.render(m, width: 60, height: 40)
        XCTAssertTrue(lines.allSatisfy { $0.count <= 60 })
        XCTAssertEqual(lines[0], "pid 4242 ./app --serve               elapsed 59.0 s [paused]")
        XCTAssertEqual(lines[5], ">   4.0 MiB         4    +4.0 KiB/s  read_body < handle < m…")
        // The expanded stack, one frame a line under its row, cut to the width.
        XCTAssertEqual(lines[6], "                                     0x0000555500001256 rea…")
        XCTAssertEqual(lines[7], "                                     0x0000555500001256 han…")
        XCTAssertEqual(lines.count, 5 + 1 + 4 + 2 + 1)
        // Fewer lines than the table: the selected row stays on screen, the footer stays last.
        var low = model(selected: 2)
        low.selected = 2
        let short = LiveView.render(low, width: 80, height: 7)
        XCTAssertEqual(short.count, 7)
        XCTAssertTrue(short[5].hasPrefix(">   4.0 KiB"), short[5])
        XCTAssertTrue(short[6].hasPrefix("b bytes"))
    }
}
