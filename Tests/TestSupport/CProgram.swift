import Foundation

/// A small C or C++ program that a test writes, compiles and runs, so assertions are about a real binary.
public struct CProgram {
    /// The compiled executable (or shared object).
    public let path: String
    /// The source file, for asserting file names in symbolized frames.
    public let sourcePath: String
    public let directory: URL

    /// Compiles `source` with debug info. `language` is "c" or "c++"; `extraFlags` go last.
    public static func build(
        _ name: String, source: String, language: String = "c", extraFlags: [String] = [], sharedObject: Bool = false
    ) throws -> CProgram {
        let dir = Scratch.directory
            .appendingPathComponent("leaktest-\(name)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ext = language == "c++" ? "cpp" : "c"
        let src = dir.appendingPathComponent("\(name).\(ext)")
        try source.write(to: src, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent(sharedObject ? "lib\(name).so" : name)
        let compiler = language == "c++" ? "g++" : "gcc"
        var args = ["-g", "-O0", "-fno-omit-frame-pointer", "-fno-inline", "-pthread", "-o", out.path, src.path]
        if sharedObject { args += ["-shared", "-fPIC"] }
        args += extraFlags
        let result = try Run.capture(["/usr/bin/env", compiler] + args)
        guard result.status == 0 else {
            throw TestSupportError("\(compiler) failed for \(name): \(result.stderr)")
        }
        return CProgram(path: out.path, sourcePath: src.path, directory: dir)
    }

    /// The 1-based line of the first line in the source that contains `marker`.
    public func line(of marker: String) throws -> Int {
        let text = try String(contentsOfFile: sourcePath, encoding: .utf8)
        for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where l.contains(marker) {
            return i + 1
        }
        throw TestSupportError("marker \(marker) not in \(sourcePath)")
    }
}

/// Runs a command to completion and captures what it printed.
public enum Run {
    public struct Result {
        public let status: Int32
        /// The signal that ended it, or 0.
        public let signal: Int32
        public let stdout: String
        public let stderr: String
    }

    public static func capture(_ argv: [String], environment: [String: String]? = nil, timeout: TimeInterval = 120) throws -> Result {
        let p = try RunningProcess(argv, environment: environment)
        p.closeInput()
        let (status, signal) = try p.wait(timeout: timeout)
        return Result(status: status, signal: signal, stdout: p.stdout, stderr: p.stderr)
    }
}
