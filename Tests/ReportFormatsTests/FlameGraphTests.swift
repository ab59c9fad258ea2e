import Foundation
import ReportFormats
import TestSupport
import XCTest

/// The flame graph as a browser shows it: headless Chromium loads the SVG, hovers, clicks and
/// searches, and the test reads the DOM and the layout the browser computed.
final class FlameGraphTests: XCTestCase {
    struct Frame: Decodable {
        var title: String
        var width: Double
        var rendered: Double
        var fill: String
        var hidden: Bool
        var text: String?
        var name: String { String(title.split(separator: "\n", maxSplits: 1).first ?? "") }
    }

    struct Result: Decodable {
        var initial: [Frame]
        var details: String
        var zoomed: [Frame]
        var matched: String
        var searched: [Frame]
    }

    private func write(_ svg: String, _ name: String) throws -> URL {
        let dir = Peer.tempFile("flame")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try svg.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    private func frames(_ fs: [Frame], _ name: String) -> [Frame] { fs.filter { $0.name == name } }

    /// The leak-mode colour of a frame, as the SVG file has it before any search.
    static func warm(_ name: String) -> String? {
        let svg = FlameGraph.svg(Fixtures.profile())
        guard let t = svg.range(of: "<title>\(name)\n"), let f = svg.range(of: "fill=\"", range: t.upperBound..<svg.endIndex) else { return nil }
        return String(svg[f.upperBound...].prefix(7))
    }

    func testBrowserShowsFramesWithTheirWidthsHoverZoomAndSearch() throws {
        let url = try write(FlameGraph.svg(Fixtures.profile()), "leaks.svg")
        let r = try JSONDecoder().decode(Result.self, from: Chromium.exercise(url, zoomTo: "handle", search: "^(read_body|cache_)"))

        // Every frame of the input, and the root; main twice (one stack lacks the libc frame below it).
        XCTAssertEqual(
            Set(r.initial.map(\.name)), ["all", "[libc.so.6+0x51d90]", "main", "handle", "read_body (inlined)", "cache_put", "log_line", "__strdup"])
        let drawn = 1180.0, total = 5_509_120.0
        let one = { (name: String) -> Frame? in self.frames(r.initial, name).first }
        XCTAssertEqual(one("all")?.rendered ?? 0, drawn, accuracy: 0.01)
        XCTAssertEqual(one("handle")?.rendered ?? 0, drawn * 4_194_304 / total, accuracy: 0.01)
        XCTAssertEqual(one("read_body (inlined)")?.rendered ?? 0, drawn * 4_194_304 / total, accuracy: 0.01)
        XCTAssertEqual(one("cache_put")?.rendered ?? 0, drawn * 1_310_720 / total, accuracy: 0.01)
        XCTAssertEqual((one("handle")?.rendered ?? 0) / (one("cache_put")?.rendered ?? 1), 3.2, accuracy: 0.001)
        XCTAssertEqual(one("__strdup")?.title, "__strdup\n4096 bytes, 0.07%")
        XCTAssertEqual(one("handle")?.text, "handle")

        // Hover names the frame with its bytes and share.
        XCTAssertEqual(r.details, "handle: 4194304 bytes, 76.13%")

        // Zoomed to handle: it and what it calls span the width; its callers too; the rest is hidden.
        XCTAssertEqual(frames(r.zoomed, "handle").first?.rendered ?? 0, drawn, accuracy: 0.01)
        XCTAssertEqual(frames(r.zoomed, "read_body (inlined)").first?.rendered ?? 0, drawn, accuracy: 0.01)
        XCTAssertEqual(frames(r.zoomed, "all").first?.hidden, false)
        XCTAssertEqual(frames(r.zoomed, "cache_put").first?.hidden, true)
        XCTAssertEqual(frames(r.zoomed, "__strdup").first?.hidden, true)

        // Search highlights the matches and gives the share they cover.
        let highlighted = Set(r.searched.filter { $0.fill == "rgb(230,0,230)" }.map(\.name))
        XCTAssertEqual(highlighted, ["read_body (inlined)", "cache_put"])
        XCTAssertEqual(r.matched, "Matched: 99.9%")
        XCTAssertEqual(frames(r.searched, "handle").first?.hidden, false)
    }

    /// A shared link: `?x=&y=` zooms and `?s=` searches as the SVG loads.
    func testLinkZoomsAndSearchesAtLoad() throws {
        let url = try write(FlameGraph.svg(Fixtures.profile()), "link.svg")
        // handle's box starts after cache_put's (1310720 of 5509120 bytes of 1180 px) on the third row.
        let data = try Chromium.exercise(url, zoomTo: "all", search: "^$", query: "?x=290.74&y=56&s=read_body")
        let r = try JSONDecoder().decode(Result.self, from: data)
        XCTAssertEqual(frames(r.initial, "handle").first?.rendered ?? 0, 1180, accuracy: 0.01)
        XCTAssertEqual(frames(r.initial, "cache_put").first?.hidden, true)
        XCTAssertEqual(frames(r.initial, "read_body (inlined)").first?.fill, "rgb(230,0,230)")
        XCTAssertEqual(frames(r.initial, "handle").first?.fill, FlameGraphTests.warm("handle"))
    }

    func testGrowthModeColoursTheGrowingStackRed() throws {
        var p = Fixtures.profile()
        p.stacks[0].series = GrowthTests.drip
        p.stacks[1].series = GrowthTests.cache
        let svg = FlameGraph.svg(p, options: .init(mode: .growth))
        let r = try JSONDecoder().decode(Result.self, from: Chromium.exercise(try write(svg, "growth.svg"), zoomTo: "main", search: "x"))
        XCTAssertEqual(frames(r.initial, "handle").first?.fill, "#d62728")
        XCTAssertEqual(frames(r.initial, "cache_put").first?.fill, "#e8dec4")
        XCTAssertEqual(frames(r.initial, "handle").first?.title, "handle\n4194304 bytes, 76.13%, growth +4.0 KiB/s")
    }

    /// 131k stacks of 38 frames: narrow frames are merged, the file stays under 10 MB and loads.
    func testLargeInputStaysSmallAndLoads() throws {
        let started = Date()
        let svg = FlameGraph.svg(SyntheticProfile.make())
        print("flame graph of 131072 stacks: \(svg.utf8.count) bytes in \(String(format: "%.1f", Date().timeIntervalSince(started))) s (debug build)")
        XCTAssertLessThan(svg.utf8.count, 10_000_000)
        XCTAssertTrue(svg.contains("narrower frames"))
        let url = try write(svg, "large.svg")
        let r = try JSONDecoder().decode(Result.self, from: Chromium.exercise(url, zoomTo: "main", search: "Handler3_0::"))
        XCTAssertGreaterThan(r.initial.count, 1000)
        XCTAssertEqual(frames(r.initial, "all").first?.rendered ?? 0, 1180, accuracy: 0.01)
        // Every stack starts in the C runtime and main, so those span the width.
        XCTAssertEqual(frames(r.initial, "__libc_start_call_main").first?.rendered ?? 0, 1180, accuracy: 0.01)
        XCTAssertEqual(frames(r.initial, "main").first?.rendered ?? 0, 1180, accuracy: 0.01)
        XCTAssertTrue(r.matched.hasPrefix("Matched: "), r.matched)
    }

    /// A byte budget smaller than the picture: merging widens until it fits, and the width still adds up.
    func testByteBudgetWidensMerging() {
        let p = SyntheticProfile.make(stacks: 4000)
        let full = FlameGraph.svg(p, options: .init(maxBytes: .max))
        let small = FlameGraph.svg(p, options: .init(maxBytes: full.utf8.count / 4))
        XCTAssertLessThanOrEqual(small.utf8.count, full.utf8.count / 4)
        XCTAssertTrue(small.contains("<title>all\n\(p.stacks.reduce(0) { $0 + $1.inUseBytes }) bytes, 100.00%</title>"))
    }

    func testFoldedStacks() {
        XCTAssertEqual(
            FoldedStacks.render(Fixtures.profile()),
            """
            [libc.so.6+0x51d90];main;cache_put 1310720
            [libc.so.6+0x51d90];main;handle;read_body_[i] 4194304
            main;log_line;__strdup 4096

            """)
        XCTAssertEqual(FoldedStacks.render(Fixtures.profile(), weight: .count).split(separator: "\n").map { $0.split(separator: " ").last ?? "" }, ["5", "4", "64"])
    }
}
