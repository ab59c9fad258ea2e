import Foundation
import GRDB
import SessionStore
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
        expect(empty) { if case .corrupt(_, "the file is empty") = $0 { return true } else { return false } }
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
        _ = try SessionFixture.write(to: path)
        XCTAssertNoThrow(try SessionReader(path: path + ".old"))
    }
}
