import Foundation
import LeakReport
import SessionStore
import TestSupport
import Vocabulary
import XCTest

/// The session's storage fails mid-run: its filesystem fills up (a small tmpfs) or turns read-only, or its
/// directory is removed. The program runs to its end with its own output, the collector says in one line
/// what happened, and a session that opens is left: complete when the space comes back or the file can be
/// saved elsewhere, else complete up to the failure.
final class SessionStorageFaultTests: XCTestCase {
    /// 20 rounds 100 ms apart; each leaks 64 bytes from each of 2048 distinct stacks (11 levels of two
    /// call sites each), so the session grows by a few hundred kilobytes a round.
    static let source = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <unistd.h>
        static volatile unsigned sink;
        __attribute__((noinline)) static void leak(void) { void *p = malloc(64); sink += (unsigned)(size_t)p; }
        __attribute__((noinline)) static void level(int d, unsigned path) {
            if (d == 11) { leak(); return; }
            if (path & (1u << d)) { level(d + 1, path); sink += 1; } else { level(d + 1, path); sink += 2; }
        }
        int main(int argc, char **argv) {
            for (int round = 0; round < 20; round++) {
                for (unsigned p = 0; p < 2048; p++) level(0, p);
                usleep(100000);
            }
            // With an argument: runs on until that file exists, so a busy machine cannot end the run
            // before the test has given the space back.
            for (int i = 0; argc > 1 && i < 6000 && access(argv[1], F_OK) != 0; i++) usleep(10000);
            printf("done %u\\n", sink != 0);
            return 0;
        }
        """

    private var mount: URL!

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("the disk-full tests mount a tmpfs: run as root (CI does)") }
        mount = Scratch.directory.appendingPathComponent("diskfull-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        let r = try Run.capture(["/bin/mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount.path])
        guard r.status == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(r.stderr)") }
    }

    override func tearDownWithError() throws {
        guard let mount else { return }
        _ = try? Run.capture(["/bin/umount", "-l", mount.path])
        try? FileManager.default.removeItem(at: mount)
    }

    /// Fills the tmpfs but for `free` bytes.
    /// A file whose creation lets the program end (its argument): outside `dir`'s filesystem, so creating
    /// it never needs the space or the directory the test takes away.
    private static func gate(in dir: URL) -> URL {
        dir.deletingLastPathComponent().appendingPathComponent("\(dir.lastPathComponent)-gate-\(UUID().uuidString.prefix(6))")
    }

    /// Waits until the collector has created its session and written its first rows (so its WAL exists
    /// too): a fixed sleep is too short on a busy machine.
    private static func waitForSession(_ path: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        // Not by opening it: a reader could create the -shm file as root before the collector does.
        let fm = FileManager.default
        while !(fm.fileExists(atPath: path) && fm.fileExists(atPath: path + "-wal") && fm.fileExists(atPath: path + "-shm")) {
            guard Date() < deadline else { throw TestSupportError("\(path) not written after \(Int(timeout)) s") }
            usleep(10_000)
        }
    }

    private func fill(leaving free: Int) throws -> URL {
        let filler = mount.appendingPathComponent("filler")
        var st = statvfs()
        XCTAssertEqual(statvfs(mount.path, &st), 0)
        let available = Int(st.f_bavail) * Int(st.f_frsize)
        try Data(count: max(available - free, 0)).write(to: filler)
        return filler
    }

    func testAFullDiskLeavesAReadableSessionAndOneLineSayingWhatIsMissing() throws {
        let prog = try CProgram.build("many_stacks", source: Self.source)
        let session = mount.appendingPathComponent("s.leaks").path
        _ = try fill(leaving: 600 << 10)
        let r = try Run.capture([try BuildProducts.leakcollect, "--quiet", "--interval", "0.1", "-o", session, "--", prog.path])
        XCTAssertEqual(r.stdout, "done 1\n", "the program ran to its end with its own output")
        XCTAssertNotEqual(r.status, 0)
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("leakcollect") }
        XCTAssertTrue(lines.contains { $0.contains("cannot write \(session)") && $0.contains("collecting on in memory") }, r.stderr)
        XCTAssertTrue(lines.last?.contains("holds the collection only up to") ?? false, r.stderr)
        // What was flushed before the disk filled is a session that opens and reports.
        let reader = try SessionReader(path: session)
        let report = try TopReport.build(reader, options: TopOptions())
        XCTAssertLessThan(report.outstandingBlocks, 20 * 2048, "the session cannot hold everything")
        XCTAssertEqual(report.lostEvents, 0)
    }

    func testWhenSpaceComesBackTheFinalStateIsWrittenExactly() throws {
        let prog = try CProgram.build("many_stacks_back", source: Self.source)
        let session = mount.appendingPathComponent("s.leaks").path
        let filler = try fill(leaving: 600 << 10)
        let spaceBack = Self.gate(in: mount)
        defer { try? FileManager.default.removeItem(at: spaceBack) }
        let collector = try RunningProcess([
            try BuildProducts.leakcollect, "--quiet", "--interval", "0.1", "-o", session, "--", prog.path, spaceBack.path,
        ])
        try collector.waitFor("collecting on in memory", inStderr: true, timeout: 30)
        try FileManager.default.removeItem(at: filler)
        XCTAssertTrue(FileManager.default.createFile(atPath: spaceBack.path, contents: nil))
        let (status, _) = try collector.wait(timeout: 60)
        XCTAssertEqual(status, 0, collector.stderr)
        XCTAssertEqual(collector.stdout, "done 1\n")
        XCTAssertTrue(collector.stderr.contains("the session is written again"), collector.stderr)
        let report = try Pipeline.top(session, ["--top", "5000"])
        let leaks = report.stacks.filter { $0.userFrame?.function == "leak" }
        XCTAssertEqual(leaks.count, 2048, "every stack, including those first seen while the disk was full")
        XCTAssertTrue(leaks.allSatisfy { $0.bytes == 20 * 64 && $0.blocks == 20 })
        XCTAssertEqual(report.totals.lostEvents, 0)
    }

    func testARemovedSessionDirectoryStillEndsInACompleteSessionSavedElsewhere() throws {
        let prog = try CProgram.build("many_stacks_rm", source: Self.source)
        let dir = mount.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let session = dir.appendingPathComponent("s.leaks").path
        let gate = Self.gate(in: mount)
        defer { try? FileManager.default.removeItem(at: gate) }
        let collector = try RunningProcess([
            try BuildProducts.leakcollect, "--quiet", "--interval", "0.1", "-o", session, "--", prog.path, gate.path,
        ])
        try Self.waitForSession(session)
        try FileManager.default.removeItem(at: dir)
        XCTAssertTrue(FileManager.default.createFile(atPath: gate.path, contents: nil))
        let (status, _) = try collector.wait(timeout: 60)
        XCTAssertEqual(status, 0, collector.stderr)
        XCTAssertEqual(collector.stdout, "done 1\n")
        XCTAssertTrue(collector.stderr.contains("\(session) was removed or replaced while collecting"), collector.stderr)
        let line = collector.stderr.split(separator: "\n").first { $0.contains("the session was saved as ") }
        let saved = try XCTUnwrap(line?.components(separatedBy: "saved as ").last, collector.stderr)
        defer { try? FileManager.default.removeItem(atPath: saved) }
        let report = try Pipeline.top(saved, ["--top", "5000"])
        let leaks = report.stacks.filter { $0.userFrame?.function == "leak" }
        XCTAssertEqual(leaks.count, 2048)
        XCTAssertTrue(leaks.allSatisfy { $0.bytes == 20 * 64 && $0.blocks == 20 })
    }

    func testADirectoryMadeReadOnlyMidRunDoesNotStopAnUnprivilegedCollector() throws {
        // Root ignores directory permissions; an unprivileged collector keeps its open files writable.
        let prog = try CProgram.build("many_stacks_ro", source: Self.source)
        let dir = Scratch.directory.appendingPathComponent("rodir-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer {
            chmod(dir.path, 0o755)
            try? FileManager.default.removeItem(at: dir)
        }
        XCTAssertEqual(chown(dir.path, 65534, 65534), 0)
        XCTAssertEqual(chmod(prog.directory.path, 0o755), 0)
        let session = dir.appendingPathComponent("s.leaks").path
        let gate = Self.gate(in: dir)
        defer { try? FileManager.default.removeItem(at: gate) }
        let collector = try RunningProcess([
            "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", try BuildProducts.leakcollect, "--quiet",
            "--interval", "0.1", "-o", session, "--", prog.path, gate.path,
        ])
        try Self.waitForSession(session)
        XCTAssertEqual(chmod(dir.path, 0o555), 0)
        XCTAssertTrue(FileManager.default.createFile(atPath: gate.path, contents: nil))
        let (status, _) = try collector.wait(timeout: 60)
        XCTAssertEqual(status, 0, collector.stderr)
        XCTAssertEqual(collector.stdout, "done 1\n")
        let report = try Pipeline.top(session, ["--top", "5000"])
        let leaks = report.stacks.filter { $0.userFrame?.function == "leak" }
        XCTAssertEqual(leaks.count, 2048)
        XCTAssertTrue(leaks.allSatisfy { $0.bytes == 20 * 64 && $0.blocks == 20 })
    }
}
