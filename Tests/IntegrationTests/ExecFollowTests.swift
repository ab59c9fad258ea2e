import Foundation
import LeakReport
import SessionStore
import TestSupport
import Vocabulary
import XCTest

/// Launch mode follows exec: the launched process's every image hands its ring to the collector at once
/// (no wait for a collector that is not coming), and the session holds every image's allocations, each
/// in its own space with its own modules, named after the image that ran last.
final class ExecFollowTests: XCTestCase {
    /// A leaky program: `LEAKS` blocks of `SIZE` bytes from `leak_here`, then, with an argument, exec of it.
    static func stage(_ name: String, size: Int, count: Int) throws -> CProgram {
        try CProgram.build(
            name,
            source: """
                #include <stdlib.h>
                #include <unistd.h>
                void *\(name)_leak(void) { return malloc(\(size)); } // \(name.uppercased())-LEAK
                int main(int argc, char **argv) {
                    void *kept[\(count)];
                    for (int i = 0; i < \(count); i++) kept[i] = \(name)_leak();
                    void *freed = malloc(5000);
                    free(freed);
                    if (argc > 1) execv(argv[1], argv + 1);
                    return kept[0] == 0;
                }
                """)
    }

    private func collectTimed(_ argv: [String], extra: [String] = []) throws -> (session: String, result: Run.Result, seconds: Double) {
        let session = Pipeline.sessionPath("exec")
        let start = Date()
        let result = try Run.capture([try BuildProducts.leakcollect, "-o", session] + extra + ["--"] + argv)
        return (session, result, Date().timeIntervalSince(start))
    }

    func testAShellThatExecsALeakyProgramReportsThatProgramsLeaksAndReturnsAtOnce() throws {
        let leaky = try Self.stage("leaky", size: 1000, count: 4)
        let run = try collectTimed(["/bin/sh", "-c", "exec \"$0\"", leaky.path])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        // Before: 5 s per exec, waiting for a collector that watched the shell's ring only.
        XCTAssertLessThan(run.seconds, 4, "leakcollect took \(run.seconds) s")
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "leaky_leak", bytes: 4000, blocks: 4, program: leaky, marker: "LEAKY-LEAK")
        XCTAssertEqual(report.session.command, [leaky.path], "the session names the image the pid ran last")
        XCTAssertEqual(report.totals.lostEvents, 0)
        let main = try XCTUnwrap(report.processes?.first)
        XCTAssertEqual(main.pid, report.session.pid)
        XCTAssertEqual(main.images.map(\.command), [["/bin/sh", "-c", "exec \"$0\"", leaky.path], [leaky.path]])
        XCTAssertEqual(main.images.map(\.end), ["exec", "exited"])
        // The shell's own blocks, outstanding when it exec'd, are the shell image's, in its own module.
        let shellStacks = report.stacks.filter { s in s.frames.contains { f in f.module.map { $0.hasSuffix("/dash") || $0.hasSuffix("/bash") } ?? false } }
        XCTAssertFalse(shellStacks.isEmpty, "\(report.stacks.map { $0.frames.compactMap(\.module) })")
        XCTAssertTrue(shellStacks.allSatisfy { s in !s.frames.contains { $0.module == leaky.path } })
        let text = try Pipeline.text(run.session)
        XCTAssertTrue(text.contains("images of pid \(main.pid): /bin/sh -c 'exec \"$0\"' \(leaky.path), then \(leaky.path)\n"), text)
    }

    func testAChainOfThreeExecsKeepsEveryImagesLeaksExactWithItsOwnModule() throws {
        let one = try Self.stage("one", size: 111, count: 1)
        let two = try Self.stage("two", size: 222, count: 2)
        let three = try Self.stage("three", size: 333, count: 3)
        let run = try collectTimed([one.path, two.path, three.path])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        XCTAssertLessThan(run.seconds, 4, "leakcollect took \(run.seconds) s")
        let report = try Pipeline.top(run.session)
        for (program, name, size, count) in [(one, "one", 111, 1), (two, "two", 222, 2), (three, "three", 333, 3)] {
            assertLeak(
                report, function: "\(name)_leak", bytes: UInt64(size * count), blocks: UInt64(count), program: program,
                marker: "\(name.uppercased())-LEAK")
            XCTAssertEqual(report.stack(function: "\(name)_leak")?.userFrame?.module, program.path)
            XCTAssertEqual(report.stack(function: "\(name)_leak")?.pid, report.session.pid)
        }
        XCTAssertEqual(report.totals.outstandingBytes, 111 + 444 + 999)
        XCTAssertEqual(report.session.command, [three.path])
        XCTAssertEqual(report.processes?.count, 1)
        XCTAssertEqual(
            report.processes?.first?.images.map(\.command), [[one.path, two.path, three.path], [two.path, three.path], [three.path]])

        // Each image is a space of its own, continuing the one before it.
        let spaces = try SessionReader(path: run.session).spaces()
        XCTAssertEqual(spaces.map(\.end), [.exec, .exec, .exited])
        XCTAssertEqual(spaces.map(\.info.parent), [nil, spaces[0].id, spaces[1].id])
        XCTAssertEqual(Set(spaces.map(\.info.pid)).count, 1)
    }

    /// A grandchild with the shim preloaded by its shell: not followed (no --follow-children), and it
    /// never waits for the collector, which is not its parent.
    func testChildrenAreNotFollowedAndNeverWaitWithoutTheFlag() throws {
        let child = try Self.stage("child", size: 700, count: 2)
        let parent = try Self.stage("parent", size: 300, count: 1)
        let run = try collectTimed([parent.path, "/bin/sh", "-c", "\"$0\"; \"$0\"; true", child.path])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        XCTAssertLessThan(run.seconds, 4, "leakcollect took \(run.seconds) s")
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "parent_leak", bytes: 300, blocks: 1, program: parent, marker: "PARENT-LEAK")
        XCTAssertNil(report.stack(function: "child_leak"), "children are collected only with --follow-children")
        XCTAssertEqual(report.processes?.count, 1)
    }
}
