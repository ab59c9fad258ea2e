import Foundation
import TestSupport
import XCTest

/// The analyses refuse bad input in one line with a non-zero exit, and never touch the session.
final class AnalysisBadInputTests: XCTestCase {
    private func expectOneLine(_ args: [String], contains text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try Run.capture([try BuildProducts.leakreport] + args)
        XCTAssertNotEqual(r.status, 0, "exit status of \(args)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("leakreport: ") && r.stderr.contains(text), "stderr: \(r.stderr)", file: file, line: line)
    }

    func testMissingCorruptAndBadMomentsAreOneLine() throws {
        let missing = "/nonexistent/app.leaks"
        for cmd in ["growth", "peak", "churn", "folded"] { try expectOneLine([cmd, missing], contains: missing) }
        try expectOneLine(["pprof", missing, "-o", Analyses.temp("x.pb.gz")], contains: missing)
        try expectOneLine(["flamegraph", missing, "-o", Analyses.temp("x.svg")], contains: missing)
        try expectOneLine(["diff", missing, missing], contains: missing)

        let corrupt = Analyses.temp("corrupt.leaks")
        try Data("SQLite format 3\0".utf8 + [UInt8](repeating: 0x5a, count: 8000)).write(to: URL(fileURLWithPath: corrupt))
        for cmd in ["growth", "peak", "churn", "folded"] { try expectOneLine([cmd, corrupt], contains: corrupt) }

        let prog = try CProgram.build("bad_moments", source: "#include <stdlib.h>\nint main(void) { return malloc(10) == 0; }\n")
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let before = try Data(contentsOf: URL(fileURLWithPath: run.session))
        try expectOneLine(["diff", run.session, "--from", "2s", "--to", "1s"], contains: "after the session's end")
        try expectOneLine(["diff", run.session, "--from", "0s", "--to", "1h"], contains: "--to 1 h 0 min is after the session's end")
        try expectOneLine(["diff", run.session, "--from", "0s", "--to", "0s"], contains: "--from must be before --to")
        try expectOneLine(["diff", run.session, "--from", "soon", "--to", "1s"], contains: "invalid duration 'soon'")
        try expectOneLine(["diff", run.session], contains: "one session needs --from and --to")
        try expectOneLine(["diff", run.session, run.session, run.session], contains: "give two sessions")
        try expectOneLine(["churn", run.session, "--shorter-than", "10us"], contains: "--shorter-than must be at least 1ms")
        try expectOneLine(["pprof", run.session, "-o", "/nonexistent-dir/x.pb.gz"], contains: "cannot write /nonexistent-dir/x.pb.gz")
        try expectOneLine(["top", run.session, "--shorter-than", "1ms"], contains: "--shorter-than goes with --temporary")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run.session)), before, "the session is left as it was")
    }
}
