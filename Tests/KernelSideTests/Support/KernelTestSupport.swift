import Foundation
import TestSupport
import XCTest

/// What the kernel-mode tests share: the root requirement, scratch files, and a running
/// `leakcollect --kernel`.
enum KernelTestSupport {
    /// Kernel mode needs root (or CAP_BPF and CAP_PERFMON). Without it the test is skipped, and says so.
    static func requireRoot(_ what: String) throws {
        guard getuid() == 0 else {
            let reason = "skipped \(what): it loads BPF programs and needs root (run the tests as root, as CI does)"
            print(reason)
            throw XCTSkip(reason)
        }
    }

    /// A fresh directory anyone can enter (the unprivileged test runs a program from it as nobody).
    static func scratchDirectory(_ name: String) throws -> URL {
        let dir = Scratch.directory.appendingPathComponent("leakkernel-\(name)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return dir
    }

    /// Starts `leakcollect --kernel -o session` with `arguments` and waits until its programs are attached.
    static func startCollector(session: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> RunningProcess {
        let c = try RunningProcess([try BuildProducts.leakcollect, "--kernel", "-o", session.path] + arguments, environment: environment)
        try c.waitFor("Ctrl-C to stop", inStderr: true)
        return c
    }

    /// Stops a collector with `signal` and checks it finished cleanly.
    static func stop(_ collector: RunningProcess, signal: Int32 = SIGINT, file: StaticString = #filePath, line: UInt = #line) throws {
        collector.signal(signal)
        let (status, sig) = try collector.wait()
        XCTAssertEqual(status, 0, "leakcollect failed: \(collector.stderr)", file: file, line: line)
        XCTAssertEqual(sig, 0, file: file, line: line)
    }
}
