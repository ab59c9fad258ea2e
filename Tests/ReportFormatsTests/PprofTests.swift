import Foundation
import ReportFormats
import TestSupport
import XCTest

/// `go tool pprof` reads what the encoder writes and reports the input's figures.
final class PprofTests: XCTestCase {
    private func write(_ p: Profile, _ name: String) throws -> String {
        let url = Peer.tempFile(name)
        try PprofEncoder(comments: ["leaktoolkit test"]).encode(p).write(to: url)
        return url.path
    }

    private func pprof(_ args: [String]) throws -> String {
        let go = try Peer.find("go", hint: "Debian's golang-go")
        // pprof keeps its state under HOME; a private one keeps the test from touching the user's.
        let home = Peer.tempFile("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = home.path
        env["PPROF_TMPDIR"] = home.path
        let r = try Run.capture([go, "tool", "pprof"] + args, environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout
    }

    /// The `-top` rows as (flat, cum, name), parsed from pprof's table.
    private func topRows(_ text: String) -> [String: (flat: String, cum: String)] {
        var rows: [String: (flat: String, cum: String)] = [:]
        var inTable = false
        for line in text.split(separator: "\n") {
            if line.contains("flat%") { inTable = true; continue }
            guard inTable else { continue }
            let cols = line.split(separator: " ")
            guard cols.count >= 6 else { continue }
            rows[cols[5...].joined(separator: " ")] = (String(cols[0]), String(cols[3]))
        }
        return rows
    }

    func testTopTotalsAndPerFunctionFiguresEqualTheInput() throws {
        let path = try write(Fixtures.profile(), "heap.pb.gz")
        let all = ["-nodefraction=0", "-nodecount=100"]
        let inuse = try pprof(["-top", "-unit=byte", "-sample_index=inuse_space"] + all + [path])
        // 4 MiB of bodies + 1.25 MiB of cache + 4 KiB of strings.
        XCTAssertTrue(inuse.contains("Total samples = 5509120B"), inuse)
        XCTAssertTrue(inuse.contains("Type: inuse_space"), inuse)
        let rows = topRows(inuse)
        XCTAssertEqual(rows["read_body (inline)"]?.flat, "4194304B", inuse)
        XCTAssertEqual(rows["handle"]?.cum, "4194304B", inuse)
        XCTAssertEqual(rows["cache_put"]?.flat, "1310720B", inuse)
        XCTAssertEqual(rows["__strdup"]?.flat, "4096B", inuse)
        XCTAssertEqual(rows["main"]?.cum, "5509120B", inuse)
        // The unsymbolized libc frame is named by its offset into libc's file (0x29d90 - start + 0x28000).
        XCTAssertEqual(rows["[libc.so.6+0x51d90]"]?.cum, "5505024B", inuse)

        let allocSpace = topRows(try pprof(["-top", "-unit=byte", "-sample_index=alloc_space"] + all + [path]))
        XCTAssertEqual(allocSpace["read_body (inline)"]?.flat, "10485760B")
        XCTAssertEqual(allocSpace["__strdup"]?.flat, "65536B")
        let inuseObjects = topRows(try pprof(["-top", "-sample_index=inuse_objects"] + all + [path]))
        XCTAssertEqual(inuseObjects["read_body (inline)"]?.flat, "4")
        XCTAssertEqual(inuseObjects["cache_put"]?.flat, "5")
        XCTAssertEqual(inuseObjects["__strdup"]?.flat, "64")
        let allocObjects = topRows(try pprof(["-top", "-sample_index=alloc_objects"] + all + [path]))
        XCTAssertEqual(allocObjects["__strdup"]?.flat, "1024")
        XCTAssertEqual(allocObjects["main"]?.cum, "1039")
    }

    func testRawShowsInlinedLinesMappingsWithBuildIDsMainFirstAndHeapConvention() throws {
        var p = Fixtures.profile()
        p.samplingPeriod = 524_288
        let raw = try pprof(["-raw", try write(p, "heap.pb.gz")])
        let lines = raw.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertTrue(lines.contains("PeriodType: space bytes"), raw)
        XCTAssertTrue(lines.contains("Period: 524288"), raw)
        XCTAssertTrue(lines.contains("alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes[dflt]"), raw)
        XCTAssertTrue(lines.contains("10   10485760          4    4194304: 1 2 3"), raw)
        XCTAssertTrue(lines.contains("bytes:[1048576 bytes] pid:[4242]"), raw)
        XCTAssertTrue(lines.contains("kind:[mmap]"), raw)
        // One location for the inlined read_body and the handle it was inlined into, innermost first.
        let loc = try XCTUnwrap(lines.firstIndex(of: "1: 0x555500001256 M=1 read_body src/app.c:26 s=0"), raw)
        XCTAssertEqual(lines[loc + 1], "handle src/app.c:34 s=0")
        // The main binary is mapping 1 even though libc comes first in the input.
        let maps = try XCTUnwrap(lines.firstIndex(of: "Mappings"), raw)
        XCTAssertEqual(lines[maps + 1], "1: 0x555500000000/0x555500010000/0x1000 /srv/app/bin/app \(Fixtures.appBuildID) [FN][FL][LN][IN]")
        XCTAssertEqual(lines[maps + 2], "2: 0x7f0000000000/0x7f0000100000/0x28000 /usr/lib/x86_64-linux-gnu/libc.so.6 \(Fixtures.libcBuildID) [FN][FL][LN][IN]")
    }

    func testTracesShowTheInlinedFrameAboveItsCaller() throws {
        let traces = try pprof(["-traces", "-unit=byte", try write(Fixtures.profile(), "heap.pb.gz")])
        let lines = traces.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let top = try XCTUnwrap(lines.firstIndex(of: "4194304B   read_body (inline)"), traces)
        XCTAssertEqual(Array(lines[top + 1...top + 3]), ["handle", "main", "[libc.so.6+0x51d90]"])
    }

    /// A second run of the same program: every address moved (ASLR) and three more bodies leaked.
    func testDiffBaseAcceptsTwoRunsAndReportsTheChange() throws {
        let base = try write(Fixtures.profile(bodyBlocks: 4), "base.pb.gz")
        let new = try write(Fixtures.profile(slide: 0x3_7000_0000, bodyBlocks: 7), "new.pb.gz")
        let diff = try pprof(["-top", "-unit=byte", "-nodefraction=0", "-sample_index=inuse_space", "-diff_base", base, new])
        let rows = topRows(diff)
        XCTAssertEqual(rows["read_body (inline)"]?.flat, "3145728B", diff)
        XCTAssertEqual(rows["main"]?.cum, "3145728B", diff)
        XCTAssertNil(rows["cache_put"].flatMap { $0.flat == "0" ? nil : $0 }, diff)
        let objects = topRows(try pprof(["-top", "-nodefraction=0", "-sample_index=inuse_objects", "-diff_base", base, new]))
        XCTAssertEqual(objects["read_body (inline)"]?.flat, "3")
    }

    func testGzipOnDisk() throws {
        let data = try PprofEncoder().encode(Fixtures.profile())
        XCTAssertEqual(Array(data.prefix(2)), [0x1f, 0x8b])
        let plain = try PprofEncoder().encodeUncompressed(Fixtures.profile())
        XCTAssertLessThan(data.count, plain.count + 32)
    }
}
