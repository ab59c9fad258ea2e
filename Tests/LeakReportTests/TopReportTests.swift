import Foundation
import LeakReport
import SessionStore
import Vocabulary
import XCTest

final class TopReportTests: XCTestCase {
    private func report(_ options: TopOptions = TopOptions(), lost: UInt64 = 0) throws -> TopReport {
        let reader = try SessionReader(path: try SessionFixture.write(to: SessionFixture.path(name), lost: lost))
        return try TopReport.build(reader, options: options)
    }

    func testStacksLargestFirstWithTotals() throws {
        let r = try report()
        XCTAssertEqual(r.stacks.map { [UInt64($0.stackID), $0.bytes, $0.blocks] }, [[1, 1_048_676, 2], [3, 65536, 1], [2, 4096, 1], [4, 192, 1]])
        XCTAssertEqual(r.outstandingBytes, 1_048_676 + 65536 + 4096 + 192)
        XCTAssertEqual(r.outstandingBlocks, 5)
        XCTAssertEqual(r.info.end, .signaled(signal: 11))
    }

    func testSortByCountAndTop() throws {
        let r = try report(TopOptions(top: 2, sort: .count))
        XCTAssertEqual(r.stacks.map(\.stackID), [1, 3])
        XCTAssertEqual(r.matchingStacks, 4)
    }

    func testFiltersBySizeAgeAndKind() throws {
        XCTAssertEqual(try report(TopOptions(filter: LiveFilter(minSize: 4096))).stacks.map { [UInt64($0.stackID), $0.bytes] }, [[1, 1 << 20], [3, 65536], [2, 4096]])
        XCTAssertEqual(try report(TopOptions(filter: LiveFilter(maxSize: 100))).stacks.map { [UInt64($0.stackID), $0.bytes] }, [[1, 100]])
        // Older than 30 s at the end: the young 100-byte block is out.
        let old = try report(TopOptions(filter: LiveFilter(minAgeNs: 30_000_000_000)))
        XCTAssertEqual(old.stacks.first.map { [$0.bytes, $0.blocks] }, [1 << 20, 1])
        // Older than the whole session: nothing.
        XCTAssertEqual(try report(TopOptions(filter: LiveFilter(minAgeNs: 120_000_000_000))).stacks.count, 0)
        XCTAssertEqual(try report(TopOptions(filter: LiveFilter(kinds: [.mmap]))).stacks.map(\.kind), [.mmap])
        XCTAssertEqual(try report(TopOptions(filter: LiveFilter(kinds: [.heap]))).stacks.map(\.stackID), [1, 2])
        XCTAssertEqual(try report(TopOptions(filter: LiveFilter(kinds: [.kernelSlab]))).stacks.map(\.stackID), [4])
    }

    /// Frames below main (the C runtime starting the program) are left out of text, kept in JSON.
    func testTextLooksLikeMemleak() throws {
        let text = TopTextRenderer.render(try report(TopOptions(top: 2, addresses: true)))
        XCTAssertEqual(
            text,
            """
            session: ./app --leak (pid 4242), launch mode, killed by signal 11 (SIGSEGV), ran 1 min 0 s
            outstanding: 1118500 bytes in 5 allocations; lost_events: 0
            Top 2 of 4 stacks with outstanding allocations (by bytes):
            \t1048676 bytes in 2 allocations from stack
            \t\t0x00000000004011a5 leak_helper+0x15 [app] /src/app.c:12
            \t\t0x00000000004011d0 main+0x20 [app] /src/app.c:30
            \t\t0x10000 size 1048576 age 55.0 s malloc
            \t\t0x20000 size 100 age 1.00 s calloc
            \t65536 bytes in 1 allocations from stack (mmap)
            \t\t0x0000000000401300 spawn+0x8 [app]
            \t\t0x7f0000010000 size 65536 age 1 min 0 s mmap anon

            """)
    }

    func testLostEventsAreShownAndWarned() throws {
        let text = TopTextRenderer.render(try report(TopOptions(top: 0), lost: 3))
        XCTAssertTrue(text.contains("lost_events: 3\n"), text)
        XCTAssertTrue(text.contains("warning: 3 events were lost"), text)
    }

    /// A resync read a table that was full (or had unreadable slots): the report must not call the totals exact.
    func testAResyncFromAnIncompleteLiveTableIsNotCalledExact() throws {
        var r = try report(TopOptions(top: 0), lost: 3)
        r.counters[.resyncs] = 1
        XCTAssertTrue(TopTextRenderer.render(r).contains("outstanding heap totals are exact;"))
        r.counters[.liveTableFull] = 7
        let text = TopTextRenderer.render(r)
        XCTAssertFalse(text.contains("exact"), text)
        XCTAssertTrue(text.contains("outstanding heap totals are approximate (the live table could not hold 7 allocations and 0 of its slots were unreadable)"), text)
    }

    func testJSONKeepsTheContractNames() throws {
        let json = TopJSON(try report(TopOptions(top: 1))).encoded()
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let totals = try XCTUnwrap(obj["totals"] as? [String: Any])
        XCTAssertEqual(totals["outstanding_bytes"] as? Int, 1_118_500)
        XCTAssertEqual(totals["outstanding_blocks"] as? Int, 5)
        XCTAssertEqual(totals["lost_events"] as? Int, 0)
        let stacks = try XCTUnwrap(obj["stacks"] as? [[String: Any]])
        XCTAssertEqual(stacks.count, 1)
        XCTAssertEqual(stacks[0]["kind"] as? String, "heap")
        XCTAssertEqual(stacks[0]["bytes"] as? Int, 1_048_676)
        XCTAssertEqual(stacks[0]["blocks"] as? Int, 2)
        let frame = try XCTUnwrap((stacks[0]["frames"] as? [[String: Any]])?.first)
        XCTAssertEqual(frame["address"] as? String, "0x4011a5")
        XCTAssertEqual(frame["function"] as? String, "leak_helper")
        XCTAssertEqual(frame["module"] as? String, "/tmp/app")
        XCTAssertEqual(frame["file"] as? String, "/src/app.c")
        XCTAssertEqual(frame["line"] as? Int, 12)
        // And it decodes back through the one model that names the fields.
        XCTAssertEqual(try JSONDecoder().decode(TopJSON.self, from: Data(json.utf8)).stacks.first?.frames.count, 3)
    }
}
