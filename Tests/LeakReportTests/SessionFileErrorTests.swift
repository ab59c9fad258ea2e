import Foundation
import TestSupport
import GRDB
import SessionStore
import Vocabulary
import XCTest

final class SessionFileErrorTests: XCTestCase {
    private func expect(_ path: String, _ check: (SessionError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try SessionReader(path: path)
            XCTFail("opened \(path)", file: file, line: line)
        } catch {
            XCTAssertTrue(check(error), "\(error)", file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
        }
    }

    func testMissingFile() {
        expect("/nonexistent/x.leaks") { $0 == .notFound(path: "/nonexistent/x.leaks") }
    }

    func testTruncatedFile() throws {
        let path = try SessionFixture.write(to: SessionFixture.path("trunc"))
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        XCTAssertGreaterThan(size, 8192)
        let fh = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try fh.truncate(atOffset: UInt64(size / 2))
        try fh.close()
        expect(path) {
            if case .corrupt(_, let d) = $0 { return d.hasPrefix("truncated") }
            return false
        }
    }

    func testGarbageAndEmptyFiles() throws {
        let garbage = SessionFixture.path("garbage")
        try Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: garbage))
        expect(garbage) { if case .notASession = $0 { return true } else { return false } }
        let empty = SessionFixture.path("empty")
        FileManager.default.createFile(atPath: empty, contents: Data())
        expect(empty) { if case .corrupt(_, let d) = $0 { return d.hasPrefix("the file is empty") } else { return false } }
    }

    func testCorruptPagesInsideAValidLookingFile() throws {
        let path = try SessionFixture.write(to: SessionFixture.path("corrupt"))
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        // Keep the 100-byte header, scribble over every page after the first.
        for i in 4096..<data.count { data[i] = 0xA5 }
        try data.write(to: URL(fileURLWithPath: path))
        expect(path) { if case .corrupt = $0 { return true } else { return false } }
    }

    func testOtherSQLiteFilesAndOtherVersions() throws {
        let other = SessionFixture.path("other")
        try DatabaseQueue(path: other).write { try $0.execute(sql: "CREATE TABLE t(x)") }
        expect(other) { if case .notASession(_, let r) = $0 { return r.contains("application id") } else { return false } }

        let newer = try SessionFixture.write(to: SessionFixture.path("newer"))
        try DatabaseQueue(path: newer).write { try $0.execute(sql: "UPDATE meta SET value = '99' WHERE key = 'schema_version'") }
        expect(newer) { $0 == .unsupportedVersion(path: newer, found: 99, expected: SessionSchema.version) }
    }

    func testAnExistingSessionIsKeptAsOld() throws {
        let path = try SessionFixture.write(to: SessionFixture.path("keep"))
        try SessionPath.prepare(path)
        _ = try SessionFixture.write(to: path)
        XCTAssertNoThrow(try SessionReader(path: path + ".old"))
        XCTAssertNoThrow(try SessionReader(path: path))
    }

    /// `-o` may replace only a session file, and only over an older session file: as root, anything else
    /// (a device, a directory, a FIFO, an unrelated file, a symbolic link) is refused and left untouched.
    func testOnlySessionFilesAreEverReplaced() throws {
        let dir = Scratch.directory.appendingPathComponent("paths-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func refused(_ path: String, _ why: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try SessionPath.prepare(path), file: file, line: line) { e in
                XCTAssertTrue("\(e)".contains(why), "\(e)", file: file, line: line)
                XCTAssertFalse("\(e)".contains("\n"), file: file, line: line)
            }
        }
        refused("/dev/null", "is a device")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "/dev/null"))
        var st = stat()
        XCTAssertEqual(stat("/dev/null", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFCHR, "/dev/null is still a device")

        let d = dir.appendingPathComponent("d").path
        try FileManager.default.createDirectory(atPath: d + ".old", withIntermediateDirectories: true)
        try "p".write(toFile: d + ".old/g", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        refused(d, "is a directory")
        XCTAssertEqual(try String(contentsOfFile: d + ".old/g", encoding: .utf8), "p")

        let fifo = dir.appendingPathComponent("f").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        refused(fifo, "is a FIFO")

        let notes = dir.appendingPathComponent("notes.txt").path
        try "keep me".write(toFile: notes, atomically: true, encoding: .utf8)
        refused(notes, "is not a leak session")
        XCTAssertEqual(try String(contentsOfFile: notes, encoding: .utf8), "keep me")

        let link = dir.appendingPathComponent("link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: notes)
        refused(link, "is a symbolic link")

        // A session whose .old is not a session: the earlier session is not rotated over it.
        let s = try SessionFixture.write(to: dir.appendingPathComponent("s.leaks").path)
        try "x".write(toFile: s + ".old", atomically: true, encoding: .utf8)
        refused(s, "s.leaks.old exists and is not a leak session")

        refused("", "the session path is empty")
        refused(dir.path + "/", "names a directory")
        refused(dir.appendingPathComponent("missing/x.leaks").path, "no such directory")
    }
}
