import Foundation
import LeakReport
import ReportFormats
import TestSupport
import XCTest

/// Runs `leakreport` subcommands the way a user does and decodes their JSON through the reports' own models.
enum Analyses {
    /// `leakreport ARGS`, which must succeed; its stdout.
    static func run(_ args: [String]) throws -> String {
        let r = try Run.capture([try BuildProducts.leakreport] + args)
        guard r.status == 0 else { throw TestSupportError("leakreport \(args.joined(separator: " ")) failed (\(r.status)): \(r.stderr)") }
        return r.stdout
    }

    static func json<T: Decodable>(_ type: T.Type, _ args: [String]) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(try run(args + ["--format", "json"]).utf8))
    }

    /// The first frame in the program itself (not libc, libstdc++ or the loader).
    static func userFunction(_ frames: [FrameJSON]) -> String? {
        frames.first { f in
            guard let m = f.module else { return true }
            let base = URL(fileURLWithPath: m).lastPathComponent
            return !(base.hasPrefix("libc.so") || base.hasPrefix("libstdc++") || base.hasPrefix("ld-linux"))
        }?.function
    }

    /// A path in the test's temporary directory.
    static func temp(_ name: String) -> String {
        Scratch.directory.appendingPathComponent("an-\(getpid())-\(UUID().uuidString.prefix(6))-\(name)").path
    }
}
