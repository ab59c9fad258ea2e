import Foundation
import TestSupport
import XCTest

/// A collector and a traced process of different users: who may attach, and who may read the session.
final class PrivilegeBoundaryTests: XCTestCase {
    private static let waiter = """
        #include <stdlib.h>
        #include <unistd.h>
        int main(void) { for (int i = 0; i < 3000; i++) { malloc(16); usleep(10000); } return 0; }
        """

    private func requireRoot() throws {
        guard getuid() == 0 else { throw XCTSkip("these tests switch users with setpriv: run as root (CI does)") }
    }

    private func shimEnvironment() throws -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        return env
    }

    func testAnUnprivilegedCollectorMayNotAttachToAnotherUsersProcess() throws {
        try requireRoot()
        let prog = try CProgram.build("root_owned", source: Self.waiter)
        let app = try RunningProcess([prog.path], environment: try shimEnvironment())
        defer { app.signal(SIGKILL) }
        usleep(200_000)
        let out = Scratch.directory.appendingPathComponent("nobody-\(getpid()).leaks").path
        let r = try Run.capture([
            "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", try BuildProducts.leakcollect, "--attach",
            String(app.pid), "-o", out,
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("pid \(app.pid) belongs to uid 0, not to you (uid 65534)"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testARootCollectorsSessionOfAnotherUsersProcessIsPrivate() throws {
        try requireRoot()
        let prog = try CProgram.build("nobody_owned", source: Self.waiter)
        XCTAssertEqual(chmod(prog.directory.path, 0o755), 0)
        let app = try RunningProcess(
            ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", prog.path], environment: try shimEnvironment())
        defer { app.signal(SIGKILL) }
        usleep(300_000)
        let session = Pipeline.sessionPath("private")
        let r = try Run.capture([try BuildProducts.leakcollect, "--attach", String(app.pid), "--duration", "300ms", "-o", session])
        XCTAssertEqual(r.status, 0, r.stderr)
        for file in [session] + ["-wal", "-shm"].map({ session + $0 }) where FileManager.default.fileExists(atPath: file) {
            var st = stat()
            XCTAssertEqual(stat(file, &st), 0)
            XCTAssertEqual(st.st_mode & 0o777, 0o600, file)
        }
        XCTAssertGreaterThan(try Pipeline.top(session).totals.outstandingBlocks, 0)
    }
}
