import Foundation
import TestSupport
import XCTest

/// Without CAP_BPF and CAP_PERFMON (or root) the collector names what is missing and fails, before it
/// creates any session file.
final class PrivilegeTests: XCTestCase {
    func testUnprivilegedCollectorSaysWhichCapabilitiesAreMissing() throws {
        let dir = try KernelTestSupport.scratchDirectory("unprivileged")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir.path)
        let session = dir.appendingPathComponent("denied.leaks")
        var argv: [String]
        if getuid() == 0 {
            // A copy nobody can run, in case the build directory is private to root.
            let copy = dir.appendingPathComponent("leakcollect")
            try FileManager.default.copyItem(atPath: try BuildProducts.leakcollect, toPath: copy.path)
            argv = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", copy.path]
        } else {
            // Already unprivileged: run it as we are.
            argv = [try BuildProducts.leakcollect]
        }
        argv += ["--kernel", "-o", session.path, "--duration", "1"]
        let r = try Run.capture(argv)
        XCTAssertNotEqual(r.status, 0, "an unprivileged collector succeeded: \(r.stderr)")
        XCTAssertEqual(
            r.stderr, "leakcollect: --kernel needs CAP_BPF and CAP_PERFMON (or root); this process lacks CAP_BPF and CAP_PERFMON\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: session.path), "a session file was created")
    }

    /// Root whose bounding set lost CAP_PERFMON (and CAP_SYS_ADMIN, which implies it): only that one is named.
    func testRootWithoutPerfmonNamesOnlyPerfmon() throws {
        try KernelTestSupport.requireRoot("the partial-capability test")
        let dir = try KernelTestSupport.scratchDirectory("noperfmon")
        defer { try? FileManager.default.removeItem(at: dir) }
        let session = dir.appendingPathComponent("denied.leaks")
        let r = try Run.capture([
            "/usr/bin/setpriv", "--bounding-set=-perfmon,-sys_admin", "--inh-caps=-perfmon,-sys_admin", try BuildProducts.leakcollect,
            "--kernel", "-o", session.path, "--duration", "1",
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr, "leakcollect: --kernel needs CAP_BPF and CAP_PERFMON (or root); this process lacks CAP_PERFMON\n")
    }
}
