import Foundation

/// Compilers and runtimes of other languages the tests build real programs with (Swift, Rust, node),
/// and the binutils steps that split, strip and compress debug info.
public enum Toolchains {
    /// The first executable named `name` on PATH or in `extra` directories; nil when none.
    public static func find(_ name: String, extra: [String] = []) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + extra {
            let p = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// rustup's toolchain lives under ~/.cargo/bin, which CI's PATH may lack; Debian's rustc is on PATH.
    public static var rustc: String? {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        return find("rustc", extra: ["\(home)/.cargo/bin", "/root/.cargo/bin"])
    }

    public static var swiftc: String? { find("swiftc", extra: ["/opt/swift/usr/bin"]) }
    public static var node: String? { find("node", extra: ["/usr/local/bin"]) }

    /// Runs a build step, failing the test set-up with its output when it fails.
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String]? = nil) throws -> Run.Result {
        let r = try Run.capture(argv, environment: environment, timeout: 300)
        guard r.status == 0 else { throw TestSupportError("\(argv.joined(separator: " ")) failed (\(r.status)): \(r.stderr)\(r.stdout)") }
        return r
    }
}

extension CProgram {
    /// A program in another language: `source` is written to `NAME.EXT` in a fresh directory and
    /// `compile(source, output)` gives the command that builds it.
    public static func build(
        _ name: String, source: String, fileExtension: String, compile: (_ source: String, _ output: String) -> [String]
    ) throws -> CProgram {
        let dir = Scratch.directory
            .appendingPathComponent("leaktest-\(name)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let src = dir.appendingPathComponent("\(name).\(fileExtension)")
        try source.write(to: src, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent(name)
        try Toolchains.run(compile(src.path, out.path))
        return CProgram(path: out.path, sourcePath: src.path, directory: dir)
    }
}
