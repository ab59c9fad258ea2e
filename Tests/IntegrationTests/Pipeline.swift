import Foundation
import LeakReport
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// Runs the real binaries the way a user does: leakcollect on a compiled program, then leakreport.
enum Pipeline {
    struct Collected {
        let session: String
        let result: Run.Result
    }

    static func sessionPath(_ name: String) -> String {
        Scratch.directory.appendingPathComponent("it-\(name)-\(getpid())-\(UUID().uuidString.prefix(6)).leaks").path
    }

    /// Options every `collect` adds: `--bpf` while the fixtures run again in BPF-only mode (BPFModeFixtureTests).
    nonisolated(unsafe) static var modeOptions: [String] = []

    /// `leakcollect -o SESSION [extra] -- program args`.
    static func collect(_ program: CProgram, _ args: [String] = [], extra: [String] = [], environment: [String: String]? = nil) throws -> Collected {
        let session = sessionPath(URL(fileURLWithPath: program.path).lastPathComponent)
        let argv = [try BuildProducts.leakcollect, "-o", session] + modeOptions + extra + ["--", program.path] + args
        let result = try Run.capture(argv, environment: environment)
        return Collected(session: session, result: result)
    }

    /// `leakreport top SESSION --format json [args]`, decoded through the report's own JSON model.
    static func top(_ session: String, _ args: [String] = []) throws -> TopJSON {
        let r = try Run.capture([try BuildProducts.leakreport, "top", session, "--format", "json", "--top", "1000"] + args)
        guard r.status == 0 else { throw TestSupportError("leakreport failed (\(r.status)): \(r.stderr)") }
        return try JSONDecoder().decode(TopJSON.self, from: Data(r.stdout.utf8))
    }

    static func text(_ session: String, _ args: [String] = []) throws -> String {
        let r = try Run.capture([try BuildProducts.leakreport, "top", session] + args)
        guard r.status == 0 else { throw TestSupportError("leakreport failed (\(r.status)): \(r.stderr)") }
        return r.stdout
    }
}

extension TopJSON {
    /// The stack whose innermost frame outside the C/C++ runtime is `function`, of `kind`.
    func stack(function: String, kind: String = "heap") -> Stack? {
        stacks.first { $0.kind == kind && $0.userFrame?.function == function }
    }

    /// Every stack that has `function` anywhere in it.
    func stacks(through function: String) -> [Stack] {
        stacks.filter { $0.frames.contains { $0.function == function } }
    }
}

extension TopJSON.Stack {
    /// The first frame not in libc, libstdc++ or the dynamic loader: where the program itself allocated.
    var userFrame: TopJSON.Frame? {
        frames.first { f in
            guard let m = f.module else { return true }
            let base = URL(fileURLWithPath: m).lastPathComponent
            return !(base.hasPrefix("libc.so") || base.hasPrefix("libstdc++") || base.hasPrefix("ld-linux"))
        }
    }
}

/// Asserts a stack exists for `function` with exactly `bytes` and `blocks`, and, if given, that its
/// frame in `function` is at the source line containing `marker`.
func assertLeak(
    _ report: TopJSON, function: String, bytes: UInt64, blocks: UInt64, kind: String = "heap", program: CProgram? = nil, marker: String? = nil,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard let s = report.stack(function: function, kind: kind) else {
        let seen = report.stacks.map { "\($0.kind) \($0.bytes)B/\($0.blocks) \($0.userFrame?.function ?? "?")" }
        return XCTFail("no \(kind) stack from \(function); stacks: \(seen)", file: file, line: line)
    }
    XCTAssertEqual(s.bytes, bytes, "bytes from \(function)", file: file, line: line)
    XCTAssertEqual(s.blocks, blocks, "blocks from \(function)", file: file, line: line)
    if let program, let marker {
        XCTAssertEqual(s.userFrame?.file, program.sourcePath, file: file, line: line)
        XCTAssertEqual(s.userFrame?.line, try? program.line(of: marker), "line of \(marker)", file: file, line: line)
    }
}
