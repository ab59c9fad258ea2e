import Foundation
import GRDB
import LeakReport
import SessionStore
import Vocabulary
import XCTest

/// `SessionReader(bytes:name:)`, the fuzzer's way in, must read what `SessionReader(path:)` reads from
/// the same bytes in a file, and refuse what it refuses with the same error.
final class SessionBytesTests: XCTestCase {
    private func fixtureBytes() throws -> [UInt8] {
        let path = try SessionFixture.write(to: SessionFixture.path("bytes"))
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func fromBytes(_ bytes: [UInt8], name: String = "x.leaks") throws(SessionError) -> SessionReader {
        do {
            return try bytes.withUnsafeBytes { raw in try SessionReader(bytes: raw, name: name) }
        } catch let e as SessionError {
            throw e
        } catch {
            XCTFail("not a SessionError: \(error)")
            throw .notFound(path: name)
        }
    }

    private func fromFile(_ bytes: [UInt8], name: String) throws -> SessionReader {
        let path = SessionFixture.path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try SessionReader(path: path)
    }

    func testReadsWhatTheFileReads() throws {
        let bytes = try fixtureBytes()
        let memory = try fromBytes(bytes)
        let file = try fromFile(bytes, name: "same")
        XCTAssertEqual(memory.info.command, file.info.command)
        XCTAssertEqual(memory.info.asOfNs, file.info.asOfNs)
        XCTAssertEqual(try memory.counters(), try file.counters())
        XCTAssertEqual(try memory.spaces(), try file.spaces())
        XCTAssertEqual(try memory.modules(), try file.modules())
        XCTAssertEqual(try memory.totals(), try file.totals())
        let memoryTop = TopTextRenderer.render(try TopReport.build(memory, options: TopOptions(top: 10)))
        XCTAssertEqual(memoryTop, TopTextRenderer.render(try TopReport.build(file, options: TopOptions(top: 10))))
        XCTAssertTrue(memoryTop.contains("leak_helper"), memoryTop)
    }

    /// A WAL-mode file with nothing in its -wal reads the same from bytes, though memory has no WAL.
    func testWALModeBytes() throws {
        var bytes = try fixtureBytes()
        bytes[18] = 2
        bytes[19] = 2
        let memory = try fromBytes(bytes)
        XCTAssertEqual(try memory.totals(), try fromFile(bytes, name: "wal").totals())
        XCTAssertFalse(try memory.totals().isEmpty)
    }

    func testRefusesWhatTheFileRefuses() throws {
        let bytes = try fixtureBytes()
        func refused(_ b: [UInt8], _ check: (SessionError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try fromBytes(b, name: "bad.leaks"), file: file, line: line) { e in
                guard let e = e as? SessionError else { return XCTFail("\(e)", file: file, line: line) }
                XCTAssertTrue(check(e), "\(e)", file: file, line: line)
                XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
            }
            XCTAssertThrowsError(try fromFile(b, name: "bad"), file: file, line: line)
        }
        refused(Array(bytes.prefix(bytes.count / 2))) { if case .corrupt(_, let d) = $0 { return d.hasPrefix("truncated") } else { return false } }
        refused([]) { if case .corrupt(_, let d) = $0 { return d.hasPrefix("the file is empty") } else { return false } }
        refused((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }) { if case .notASession = $0 { return true } else { return false } }
        var scribbled = bytes
        for i in 4096..<scribbled.count { scribbled[i] = 0xA5 }
        refused(scribbled) { if case .corrupt = $0 { return true } else { return false } }

        let newer = SessionFixture.path("newer")
        try Data(bytes).write(to: URL(fileURLWithPath: newer))
        try DatabaseQueue(path: newer).write { try $0.execute(sql: "UPDATE meta SET value = '99' WHERE key = 'schema_version'") }
        refused([UInt8](try Data(contentsOf: URL(fileURLWithPath: newer)))) {
            $0 == .unsupportedVersion(path: "bad.leaks", found: 99, expected: SessionSchema.version)
        }
    }
}
