import Foundation
import LeakReport
import SessionStore
import TestSupport
import Vocabulary
import XCTest

/// `--follow-children`: fork and exec children of the launched program are collected into the same
/// session, each process's blocks in its own spaces, attributed to its pid.
final class ChildrenFollowTests: XCTestCase {
    static let parentSource = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/wait.h>
        #include <unistd.h>
        void *parent_leak(void) { return malloc(100); } // PARENT-LEAK
        void *childa_leak(void) { return malloc(200); } // CHILDA-LEAK
        void *childb_leak(void) { return malloc(300); } // CHILDB-LEAK
        static void say(const char *what, pid_t pid) {
            char line[64];
            int n = snprintf(line, sizeof line, "%s %d\\n", what, (int)pid);
            write(1, line, (size_t)n); /* no stdio buffer to inherit or leak */
        }
        int main(int argc, char **argv) {
            parent_leak();
            pid_t a = fork();
            if (a == 0) {
                for (int i = 0; i < 2; i++) childa_leak();
                void *churn = malloc(4000);
                free(churn);
                _exit(0);
            }
            pid_t b = fork();
            if (b == 0) {
                for (int i = 0; i < 3; i++) childb_leak();
                _exit(0);
            }
            pid_t c = fork();
            if (c == 0) {
                execv(argv[1], argv + 1);
                _exit(127);
            }
            say("a", a);
            say("b", b);
            say("c", c);
            int status, failed = 0;
            for (int i = 0; i < 3; i++) {
                wait(&status);
                failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
            }
            return failed;
        }
        """

    func testForkedAndExecdChildrenAreCollectedExactlyEachUnderItsPid() throws {
        let parent = try CProgram.build("forker", source: Self.parentSource)
        let execd = try ExecFollowTests.stage("execd", size: 400, count: 4)
        let session = Pipeline.sessionPath("children")
        let start = Date()
        let result = try Run.capture([try BuildProducts.leakcollect, "-o", session, "--follow-children", "--", parent.path, execd.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        var pids: [String: Int32] = [:]
        for line in result.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, let p = Int32(f[1]) { pids[String(f[0])] = p }
        }
        let (a, b, c) = (try XCTUnwrap(pids["a"]), try XCTUnwrap(pids["b"]), try XCTUnwrap(pids["c"]))
        let report = try Pipeline.top(session)
        let main = try XCTUnwrap(report.session.pid)
        XCTAssertEqual(report.totals.lostEvents, 0)
        for (function, bytes, blocks, pid, marker, program) in [
            ("parent_leak", 100, 1, main, "PARENT-LEAK", parent), ("childa_leak", 400, 2, a, "CHILDA-LEAK", parent),
            ("childb_leak", 900, 3, b, "CHILDB-LEAK", parent), ("execd_leak", 1600, 4, c, "EXECD-LEAK", execd),
        ] {
            assertLeak(report, function: function, bytes: UInt64(bytes), blocks: UInt64(blocks), program: program, marker: marker)
            XCTAssertEqual(report.stack(function: function)?.pid, pid, function)
        }
        let processes = try XCTUnwrap(report.processes)
        XCTAssertEqual(processes.first?.pid, main, "the launched process comes first")
        XCTAssertEqual(Set(processes.map(\.pid)), [main, a, b, c])
        XCTAssertEqual(processes.map(\.parentPid), [nil, main, main, main])
        XCTAssertEqual(processes.first { $0.pid == a }.map { [$0.bytes, $0.blocks] }, [400, 2])
        XCTAssertEqual(processes.first { $0.pid == b }.map { [$0.bytes, $0.blocks] }, [900, 3])
        // The exec'd child: its fork image (which allocated nothing of its own), then the program it exec'd.
        XCTAssertEqual(processes.first { $0.pid == c }?.images.map(\.command), [[parent.path, execd.path], [execd.path]])
        XCTAssertEqual(processes.first { $0.pid == c }?.images.map(\.end), ["exec", "exited"])
        XCTAssertEqual(processes.first { $0.pid == c }.map { [$0.bytes, $0.blocks] }, [1600, 4])

        // --pid keeps one process's stacks and totals.
        let onlyB = try Pipeline.top(session, ["--pid", String(b)])
        XCTAssertEqual(onlyB.stacks.map { $0.userFrame?.function }, ["childb_leak"])
        XCTAssertEqual(onlyB.totals.outstandingBytes, 900)
        XCTAssertEqual(onlyB.totals.outstandingBlocks, 3)
        let text = try Pipeline.text(session)
        XCTAssertTrue(text.contains("4 processes:\n"), text)
        XCTAssertTrue(text.contains("\tpid \(b) (child of \(main)): 900 bytes in 3 allocations; \(parent.path) \(execd.path)\n"), text)
        XCTAssertTrue(text.contains("\t900 bytes in 3 allocations from stack in pid \(b)\n"), text)

        let bad = try Run.capture([try BuildProducts.leakreport, "top", session, "--pid", "1"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("pid 1 is not in \(session)"), bad.stderr)
    }
}
