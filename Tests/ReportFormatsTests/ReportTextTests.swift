import Foundation
import ReportFormats
import XCTest

/// Text and JSON of growth, churn and peak from plain inputs.
final class ReportTextTests: XCTestCase {
    func testGrowthTextAndJSON() throws {
        var p = Fixtures.profile()
        p.stacks[0].series = GrowthTests.drip
        p.stacks[1].series = GrowthTests.buffer
        p.stacks[2].series = GrowthTests.cache
        let r = GrowthRanking(p)
        XCTAssertEqual(r.entries.map(\.stack), [0, 1])
        let text = GrowthTextRenderer.render(r, of: p)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines[0], "2 of 3 stacks growing (by growth score, bytes/s that look like a leak):")
        XCTAssertEqual(
            lines[1],
            "\t+4.0 KiB/s for 59.0 s, fit 1.00, grew in 100% of intervals, score 4096.0: 4194304 bytes in 4 allocations from stack ▁▁▂▂▂▃▃▃▃▄▄▄▅▅▅▆▆▆▆▇▇▇██")
        XCTAssertEqual(lines[2], "\t\t0x0000555500001256 read_body (inlined) [app] src/app.c:26")
        // The buffer: its last fill is fast and straight, but the whole minute is a saw (fit 0.03).
        XCTAssertEqual(
            lines[5],
            "\t+512 KiB/s for 9.00 s, fit 0.03, grew in 100% of intervals, score 366.7: 1310720 bytes in 5 allocations from stack (mmap) ▂▄▆█▂▄▆█▂▄▆█▂▄▆█▂▄▆█▂▄▆█")

        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(GrowthJSON(r, of: p).encoded().utf8)) as? [String: Any])
        XCTAssertEqual(json["scored_stacks"] as? Int, 3)
        let first = try XCTUnwrap((json["stacks"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["rate_bytes_per_s"] as? Double, 4096)
        XCTAssertEqual(first["growing_for_ns"] as? Int, 59_000_000_000)
        XCTAssertEqual((first["series"] as? [[String: Any]])?.count, 60)
        XCTAssertEqual((first["series"] as? [[String: Any]])?[2]["bytes"] as? Int, 8192)
        XCTAssertEqual((first["series"] as? [[String: Any]])?[2]["time_ns"] as? Int, 2_000_000_000)
        XCTAssertEqual(GrowthTextRenderer.render(GrowthRanking(Profile(stacks: [])), of: Profile(stacks: [])), "No stack grew steadily (0 stacks scored).\n")
    }

    func testChurnTextAndJSON() throws {
        let p = Fixtures.profile()
        let r = ChurnReport(
            threshold: "freed before the same thread's next allocation", totalAllocations: 20000,
            stacks: [
                .init(frames: p.stacks[2].frames, temporaryBlocks: 960, temporaryBytes: 61440, allocatedBlocks: 1024),
                .init(frames: p.stacks[0].frames, temporaryBlocks: 6, temporaryBytes: 6 << 20, allocatedBlocks: 10),
                .init(frames: p.stacks[1].frames, kind: "mmap", temporaryBlocks: 0, temporaryBytes: 0, allocatedBlocks: 5),
            ], modules: p.modules)
        XCTAssertEqual(
            ChurnTextRenderer.render(r),
            """
            temporary allocations (freed before the same thread's next allocation): 966 of 20000 allocations (4.83%), 6352896 bytes
            2 stacks by temporary allocations:
            \t960 temporary allocations (4.80% of all, 93.75% of this stack's), 61440 bytes from stack
            \t\t0x00007f000009a010 __strdup [libc.so.6] string/strdup.c:41
            \t\t0x0000555500001400 log_line [app] src/app.c:80
            \t\t0x00005555000013f7 main [app] src/app.c:62
            \t6 temporary allocations (0.03% of all, 60.00% of this stack's), 6291456 bytes from stack
            \t\t0x0000555500001256 read_body (inlined) [app] src/app.c:26
            \t\t0x0000555500001256 handle [app] src/app.c:34
            \t\t0x00005555000013bd main [app] src/app.c:59

            """)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(ChurnJSON(r).encoded().utf8)) as? [String: Any])
        XCTAssertEqual(json["temporary_blocks"] as? Int, 966)
        XCTAssertEqual((json["stacks"] as? [[String: Any]])?.first?["share_of_all"] as? Double, 0.048)
        XCTAssertEqual(((json["stacks"] as? [[String: Any]])?.first?["frames"] as? [[String: Any]])?.first?["module"] as? String, "/usr/lib/x86_64-linux-gnu/libc.so.6")
    }

    /// 100 MiB allocated, freed, then 1 MiB leaked: the peak is the 100 MiB, at the stack that allocated it.
    func testPeakTextAndJSON() throws {
        let p = Fixtures.profile()
        var atPeak = Profile(stacks: [p.stacks[0], p.stacks[1]], modules: p.modules)
        atPeak.stacks[0].inUseBytes = 100 << 20
        atPeak.stacks[0].inUseBlocks = 100
        atPeak.stacks[1].inUseBytes = 0
        atPeak.stacks[1].inUseBlocks = 0
        let r = PeakReport(
            total: .init(kind: "heap and mmap", timeNs: 2_500_000_000, bytes: 100 << 20, blocks: 100),
            kinds: [.init(kind: "mmap", timeNs: 9_000_000_000, bytes: 1 << 20, blocks: 4), .init(kind: "heap", timeNs: 2_500_000_000, bytes: 100 << 20, blocks: 100)],
            nowBytes: 1 << 20, atPeak: atPeak)
        XCTAssertEqual(
            PeakTextRenderer.render(r),
            """
            peak: 104857600 bytes in 100 allocations at 2.50 s (heap and mmap); now: 1048576 bytes
            \theap alone: 104857600 bytes in 100 allocations at 2.50 s
            \tmmap alone: 1048576 bytes in 4 allocations at 9.00 s
            1 stacks holding memory at the peak (by bytes):
            \t104857600 bytes in 100 allocations from stack
            \t\t0x0000555500001256 read_body (inlined) [app] src/app.c:26
            \t\t0x0000555500001256 handle [app] src/app.c:34
            \t\t0x00005555000013bd main [app] src/app.c:59

            """)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(PeakJSON(r).encoded().utf8)) as? [String: Any])
        XCTAssertEqual((json["peak"] as? [String: Any])?["time_ns"] as? Int, 2_500_000_000)
        XCTAssertEqual((json["kinds"] as? [[String: Any]])?.map { $0["kind"] as? String }, ["heap", "mmap"])
        XCTAssertEqual(json["now_bytes"] as? Int, 1 << 20)
        XCTAssertEqual((json["stacks"] as? [[String: Any]])?.count, 1)
    }
}
