import Foundation
import LeakReport
import ReportFormats
import SessionStore
import TestSupport
import XCTest

/// `leakreport diff`, `pprof`, `folded` and `flamegraph` on real programs, checked by the tools that read them.
final class DiffAndExportTests: XCTestCase {
    static let leakySource = """
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        static void *kept[1000];
        static int n;
        void grow_site(void) { kept[n++] = malloc(4096); } // DIFF-GROW
        void steady(void) { kept[n++] = malloc(512); } // DIFF-STEADY
        char *read_body(void) { char *p = malloc(1 << 20); memset(p, 1, 1 << 20); return p; }
        void handle(void) { kept[n++] = read_body(); }
        int main(int argc, char **argv) {
            int grow = argc > 1 ? atoi(argv[1]) : 1;
            int pause_ms = argc > 2 ? atoi(argv[2]) : 0;
            for (int i = 0; i < 3; i++) steady();
            for (int i = 0; i < 2; i++) handle();
            for (int i = 0; i < grow; i++) { grow_site(); if (pause_ms) usleep(pause_ms * 1000); }
            return 0;
        }
        """

    private func leaky() throws -> CProgram { try CProgram.build("diff_leaky", source: Self.leakySource) }

    /// Two runs of one program differ in addresses (ASLR) but their stacks match by frames.
    func testDiffOfTwoRunsMatchesStacksByFramesDespiteASLR() throws {
        let prog = try leaky()
        let base = try Pipeline.collect(prog, ["2"]), new = try Pipeline.collect(prog, ["5"])
        XCTAssertEqual(base.result.status, 0, base.result.stderr)
        XCTAssertEqual(new.result.status, 0, new.result.stderr)
        let a = try Pipeline.top(base.session), b = try Pipeline.top(new.session)
        let addrA = a.stack(function: "grow_site")?.frames.first?.address, addrB = b.stack(function: "grow_site")?.frames.first?.address
        XCTAssertNotNil(addrA)
        XCTAssertNotEqual(addrA, addrB, "ASLR moves the program between runs")

        let diff = try Analyses.json(DiffJSON.self, ["diff", base.session, new.session])
        XCTAssertEqual(diff.stacks.count, 1, "only grow_site changed: \(diff.stacks.map { Analyses.userFunction($0.frames) ?? "?" })")
        let grew = diff.stacks.first
        XCTAssertEqual(grew.flatMap { Analyses.userFunction($0.frames) }, "grow_site")
        XCTAssertEqual(grew?.status, "changed")
        XCTAssertEqual(grew?.change.deltaBytes, 3 * 4096)
        XCTAssertEqual(grew?.change.deltaBlocks, 3)
        XCTAssertEqual(grew?.change.baseBlocks, 2)
        XCTAssertEqual(grew?.change.newBlocks, 5)
        XCTAssertEqual(diff.totals.deltaBytes, 3 * 4096)

        let text = try Analyses.run(["diff", base.session, new.session])
        XCTAssertTrue(text.contains("1 stacks grew, 0 shrank:\n\t+12288 bytes (+3 allocations) from stack: 8192 -> 20480 bytes in 2 -> 5 allocations\n"), text)
        // The other way round it shrank.
        let back = try Analyses.run(["diff", new.session, base.session])
        XCTAssertTrue(back.contains("0 stacks grew, 1 shrank:\n\t-12288 bytes (-3 allocations)"), back)

        // pprof's own diff agrees.
        let prefix = Analyses.temp("diff")
        _ = try Analyses.run(["diff", base.session, new.session, "--format", "pprof", "-o", prefix])
        let top = try GoPprof.top(["-diff_base", prefix + ".base.pb.gz", prefix + ".new.pb.gz"])
        XCTAssertEqual(top["grow_site"], 12288, "go tool pprof -diff_base: \(top)")
        XCTAssertEqual(top["steady"] ?? 0, 0)
    }

    /// The diff `leakreport diff` computes from the two sessions' stack trees, framing only what it
    /// prints, is the diff of the two sessions' full profiles: same changes, figures and frames.
    func testDiffThroughStackTreesEqualsDiffOfFullProfiles() throws {
        let prog = try leaky()
        let base = try Pipeline.collect(prog, ["2"]), new = try Pipeline.collect(prog, ["7"])
        XCTAssertEqual(base.result.status, 0, base.result.stderr)
        XCTAssertEqual(new.result.status, 0, new.result.stderr)
        func load(_ path: String, frames: Bool) throws -> SessionProfile {
            try SessionProfile.load(try SessionReader(path: path), ProfileRequest(frames: frames))
        }
        let full = ProfileDiff(base: try load(base.session, frames: true).profile, new: try load(new.session, frames: true).profile)
        let (b, n) = (try load(base.session, frames: false), try load(new.session, frames: false))
        XCTAssertTrue(b.profile.stacks.allSatisfy(\.frames.isEmpty), "loaded without frames")
        let viaTrees = ProfileDiff.sessions(base: b, new: n, framed: nil)
        func summary(_ d: ProfileDiff) -> [String] {
            d.changes.map { c in
                "\(c.status) \(c.stack.kind) \(c.baseBytes)/\(c.baseBlocks) -> \(c.newBytes)/\(c.newBlocks) "
                    + c.stack.frames.map { "\($0.function ?? "?"):\($0.line ?? 0)@\(String($0.address, radix: 16))" }.joined(separator: " ")
            }
        }
        XCTAssertEqual(summary(viaTrees), summary(full))
        XCTAssertEqual(viaTrees.changes.first?.stack.frames.first?.function, "grow_site")
        XCTAssertEqual(viaTrees.changes.first?.deltaBytes, 5 * 4096)
        XCTAssertEqual([viaTrees.baseBytes, viaTrees.newBytes], [full.baseBytes, full.newBytes])
        // Framing only the first change leaves the others without frames (what text prints for --top 1).
        let one = ProfileDiff.sessions(base: b, new: n, framed: 1)
        XCTAssertEqual(one.changes.first?.stack.frames.isEmpty, false)
        XCTAssertEqual(summary(one).first, summary(full).first)
    }

    /// Two moments of one session: what the stacks gained between them.
    func testDiffFromToComparesTwoMomentsOfOneSession() throws {
        let prog = try leaky()
        let run = try Pipeline.collect(prog, ["30", "100"], extra: ["--interval", "0.1"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        // A millisecond short of the end, so the decimal round trip cannot pass it.
        let span = Double(try Pipeline.top(run.session).session.durationNs ?? 0) / 1e9 - 0.001
        XCTAssertGreaterThan(span, 3)
        func grew(_ from: Double, _ to: Double) throws -> DiffJSON.Stack? {
            let d = try Analyses.json(DiffJSON.self, ["diff", run.session, "--from", "\(from)s", "--to", "\(to)s"])
            return d.stacks.first { Analyses.userFunction($0.frames) == "grow_site" }
        }
        // From the start (nothing yet) to the end: everything the session holds is new.
        let whole = try grew(0, span)
        XCTAssertEqual(whole?.status, "new")
        XCTAssertEqual(whole?.change.newBlocks, 30)
        XCTAssertEqual(whole?.change.deltaBytes, 30 * 4096)
        // Halfway through the drip: part of it, at 4096 bytes a block.
        let half = try grew(span / 2, span)
        let blocks = half?.change.deltaBlocks ?? 0
        XCTAssertTrue((3...27).contains(blocks), "half the run gained \(blocks) of 30 blocks")
        XCTAssertEqual(half?.change.deltaBytes, blocks * 4096)
        XCTAssertEqual((half?.change.baseBlocks ?? 0) + UInt64(clamping: blocks), 30)
    }

    /// `go tool pprof -top` reads our profile and reports the same figures as `leakreport top`.
    func testPprofFiguresEqualTopsFigures() throws {
        let prog = try leaky()
        let run = try Pipeline.collect(prog, ["7"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let out = Analyses.temp("heap.pb.gz")
        _ = try Analyses.run(["pprof", run.session, "-o", out])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        XCTAssertEqual(Array(bytes.prefix(2)), [0x1f, 0x8b], "gzip on disk")

        let flat = try GoPprof.top([out])
        let top = try Pipeline.top(run.session)
        var expected: [String: UInt64] = [:]
        for s in top.stacks { expected[s.frames.first?.function ?? "?", default: 0] += s.bytes }
        for (fn, b) in expected { XCTAssertEqual(flat[fn], Int64(b), "flat bytes of \(fn); pprof: \(flat)") }
        XCTAssertEqual(flat["read_body"], 2 << 20)
        XCTAssertEqual(flat["grow_site"], 7 * 4096)
        XCTAssertEqual(flat["steady"], 3 * 512)
        XCTAssertEqual(try GoPprof.total([out]), Int64(top.totals.outstandingBytes))
        // Objects too.
        let objects = try GoPprof.top([out], sample: "inuse_objects")
        XCTAssertEqual(objects["grow_site"], 7)
    }

    func testFoldedStacksAndFlameGraphInChromium() throws {
        let prog = try leaky()
        let run = try Pipeline.collect(prog, ["4"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let folded = try Analyses.run(["folded", run.session])
        let lines = folded.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasSuffix(";main;handle;read_body 2097152") }, folded)
        XCTAssertTrue(lines.contains { $0.hasSuffix(";main;grow_site 16384") }, folded)
        let counted = try Analyses.run(["folded", run.session, "--count"])
        XCTAssertTrue(counted.split(separator: "\n").contains { $0.hasSuffix(";main;grow_site 4") }, counted)

        let svg = Analyses.temp("leaks.svg")
        _ = try Analyses.run(["flamegraph", run.session, "-o", svg])
        let frames = try FlameGraphPage.frames(svg)
        let total = try Pipeline.top(run.session).totals.outstandingBytes
        let all = frames.first { $0.name == "all" }
        XCTAssertEqual(all?.rendered ?? 0, 1180, accuracy: 0.01)
        for (name, bytes) in [("read_body", 2_097_152), ("handle", 2_097_152), ("grow_site", 4 * 4096), ("steady", 3 * 512)] as [(String, Double)] {
            let f = frames.first { $0.name == name }
            XCTAssertNotNil(f, "\(name) drawn; frames: \(frames.map(\.name))")
            XCTAssertEqual(f?.rendered ?? 0, 1180 * bytes / Double(total), accuracy: 0.05, name)
            XCTAssertTrue(f?.title.hasPrefix("\(name)\n\(Int(bytes)) bytes") ?? false, f?.title ?? "")
        }

        let growth = Analyses.temp("growth.svg")
        _ = try Analyses.run(["flamegraph", run.session, "-o", growth, "--growth"])
        XCTAssertTrue(try String(contentsOfFile: growth, encoding: .utf8).contains("<svg"))
    }
}

/// `go tool pprof` as the peer that reads our profiles.
enum GoPprof {
    static func go() throws -> String {
        guard let go = Toolchains.find("go", extra: ["/usr/lib/go/bin"]) else {
            print("skipping: go is not installed (Debian's golang-go; tools/setup.sh installs it)")
            throw XCTSkip("go is not installed (Debian's golang-go)")
        }
        return go
    }

    static func output(_ args: [String], sample: String) throws -> String {
        let home = Scratch.directory.appendingPathComponent("gohome-\(getpid())").path
        let env = ProcessInfo.processInfo.environment.merging(["HOME": home, "GOCACHE": home + "/cache", "GOFLAGS": "-mod=mod", "PPROF_TMPDIR": home]) { $1 }
        let unit = sample.hasSuffix("space") ? ["-unit=byte"] : []
        let r = try Run.capture([try go(), "tool", "pprof", "-top"] + unit + ["-sample_index=\(sample)", "-nodecount=1000", "-nodefraction=0", "-edgefraction=0"] + args, environment: env)
        guard r.status == 0 else { throw TestSupportError("go tool pprof failed (\(r.status)): \(r.stderr)") }
        return r.stdout
    }

    /// Flat values by function name from `-top`.
    static func top(_ args: [String], sample: String = "inuse_space") throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for line in try output(args, sample: sample).split(separator: "\n") {
            let cols = line.split(separator: " ", omittingEmptySubsequences: true)
            guard cols.count >= 6, let flat = value(cols[0]) else { continue }
            out[cols[5...].joined(separator: " "), default: 0] += flat
        }
        return out
    }

    /// "Total samples = 2117632B" (or "of 2117632B total" when pprof shows a share).
    static func total(_ args: [String]) throws -> Int64? {
        let text = try output(args, sample: "inuse_space")
        guard let r = text.range(of: #"(?<=of |= )-?\d+B"#, options: .regularExpression) else { return nil }
        return value(text[r])
    }

    static func value<S: StringProtocol>(_ s: S) -> Int64? { Int64(s.hasSuffix("B") ? String(s.dropLast()) : String(s)) }
}

/// A flame graph loaded in headless Chromium: every frame's name, tooltip and drawn width.
enum FlameGraphPage {
    struct Frame: Decodable {
        var name: String
        var title: String
        var rendered: Double
    }

    static func frames(_ svgPath: String) throws -> [Frame] {
        guard let chromium = Toolchains.find("chromium") else {
            print("skipping: chromium is not installed (Debian's chromium; tools/setup.sh installs it)")
            throw XCTSkip("chromium is not installed")
        }
        let svg = URL(fileURLWithPath: svgPath)
        let page = svg.deletingLastPathComponent().appendingPathComponent(svg.lastPathComponent + "-page.html")
        let html = """
            <!DOCTYPE html><html><body>
            <iframe id="f" src="\(svg.lastPathComponent)" width="1200" height="900"></iframe><pre id="out"></pre>
            <script>
            document.getElementById("f").onload = function () {
              var gs = Array.from(this.contentDocument.getElementById("frames").children);
              document.getElementById("out").textContent = JSON.stringify(gs.map(function (g) {
                var t = g.querySelector("title").textContent;
                return { name: t.split("\\n")[0], title: t, rendered: g.querySelector("rect").getBoundingClientRect().width };
              }));
            };
            </script></body></html>
            """
        try html.write(to: page, atomically: true, encoding: .utf8)
        let profile = Analyses.temp("chromium-profile")
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let r = try Run.capture(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--allow-file-access-from-files",
                "--user-data-dir=\(profile)", "--virtual-time-budget=10000", "--dump-dom", page.absoluteString,
            ], timeout: 120)
        guard r.status == 0, let start = r.stdout.range(of: "<pre id=\"out\">"),
            let end = r.stdout.range(of: "</pre>", range: start.upperBound..<r.stdout.endIndex)
        else {
            let reason = "headless chromium gave no result (status \(r.status)): \(r.stderr.suffix(300))"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        let text = String(r.stdout[start.upperBound..<end.lowerBound])
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        return try JSONDecoder().decode([Frame].self, from: Data(text.utf8))
    }
}
