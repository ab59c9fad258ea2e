import CollectionRunner
import ShimSource
import Vocabulary
import Tracking
import Glibc
import RingFormat
import XCTest

/// Hostile ring contents: each must give its own `RingError`, with a one-line message, and never a crash.
final class RingValidationTests: XCTestCase {
    private let me = getpid()

    private func assertMapping(_ ring: TestRing, throws expected: RingError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ring.mapping(), file: file, line: line) { error in
            XCTAssertEqual(error as? RingError, expected, file: file, line: line)
            XCTAssertFalse("\(error)".contains("\n"), file: file, line: line)
        }
    }

    func testHeaderChecks() throws {
        assertMapping(try TestRing { $0.magic = 0x1234 }, throws: .badMagic(pid: me, found: 0x1234))
        assertMapping(try TestRing { $0.version = 2 }, throws: .unsupportedVersion(pid: me, found: 2))
        assertMapping(try TestRing { $0.header_size = 512 }, throws: .badHeaderSize(pid: me, found: 512))
        assertMapping(try TestRing { $0.data_size = 100_000 }, throws: .badDataSize(pid: me, found: 100_000))
        assertMapping(try TestRing { $0.data_size = 1024 }, throws: .badDataSize(pid: me, found: 1024))
        assertMapping(try TestRing { $0.max_depth = LR_MAX_DEPTH + 1 }, throws: .badMaxDepth(pid: me, found: LR_MAX_DEPTH + 1))
        // The header claims 128 KiB of data, the file has 64 KiB.
        assertMapping(
            try TestRing { $0.data_size = 2 * UInt64(LR_MIN_DATA_SIZE) },
            throws: .sizeMismatch(pid: me, fileSize: UInt64(LR_HEADER_SIZE + LR_MIN_DATA_SIZE), expected: UInt64(LR_HEADER_SIZE + 2 * LR_MIN_DATA_SIZE)))
        assertMapping(
            try TestRing(fileSize: Int(LR_HEADER_SIZE + LR_MIN_DATA_SIZE) + 4096),
            throws: .sizeMismatch(pid: me, fileSize: UInt64(LR_HEADER_SIZE + LR_MIN_DATA_SIZE) + 4096, expected: UInt64(LR_HEADER_SIZE + LR_MIN_DATA_SIZE)))
    }

    func testRefusesAnUnsealedMemfd() throws {
        assertMapping(try TestRing(seal: false), throws: .notSealed(pid: me))
    }

    func testRefusesSomethingThatIsNotARegularFile() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[1]) }
        XCTAssertThrowsError(try RingMapping(fd: fds[0], pid: me)) { XCTAssertEqual($0 as? RingError, .notRegularFile(pid: me)) }
    }

    /// Drains one hostile record after a good one; the good one is delivered, the bad one throws.
    private func assertRecord(_ bytes: [UInt8], throws problem: RingCorruption, file: StaticString = #filePath, line: UInt = #line) throws {
        let ring = try TestRing()
        ring.append(Rec.free(0x10))
        let at = ring.append(bytes)
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        var events: [Event] = []
        XCTAssertThrowsError(try reader.drain { events.append($0) }, file: file, line: line) { error in
            XCTAssertEqual(error as? RingError, .corrupt(pid: me, position: at, problem: problem), file: file, line: line)
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("ring of pid \(me) is corrupt at position \(at): "), message, file: file, line: line)
            XCTAssertFalse(message.contains("\n"), file: file, line: line)
        }
        XCTAssertEqual(events, [.free(address: 0x10, kind: .heap, pending: false)], file: file, line: line)
    }

    func testRecordSizeChecks() throws {
        try assertRecord(Rec.resized(Rec.free(1), 12), throws: .sizeNotMultipleOf8(size: 12))
        try assertRecord(Rec.resized(Rec.free(1), 1 << 20), throws: .sizeTooLarge(size: 1 << 20))
        try assertRecord(Rec.resized(Rec.free(1), 64), throws: .sizeBeyondWritten(size: 64, written: 16))
        try assertRecord(Rec.resized(Rec.alloc(1, 1), 16).prefix(16).map { $0 }, throws: .sizeTooSmall(size: 16, type: UInt8(LR_T_ALLOC.rawValue), minimum: 48))
    }

    func testRecordContentChecks() throws {
        var unknown = Rec.free(1)
        unknown[4] = 9
        try assertRecord(unknown, throws: .unknownType(9))
        unknown[4] = 0
        try assertRecord(unknown, throws: .unknownType(0))
        try assertRecord(Rec.alloc(1, 1, fn: LR_FN_FREE), throws: .unknownFunction(type: UInt8(LR_T_ALLOC.rawValue), fn: UInt8(LR_FN_FREE.rawValue)))
        try assertRecord(Rec.mmap(1, 1, fn: LR_FN_MALLOC), throws: .unknownFunction(type: UInt8(LR_T_MMAP.rawValue), fn: UInt8(LR_FN_MALLOC.rawValue)))
        try assertRecord(Rec.undo(1, fn: LR_FN_FREE), throws: .unknownFunction(type: UInt8(LR_T_UNDO.rawValue), fn: UInt8(LR_FN_FREE.rawValue)))
        try assertRecord(Rec.stack(0, [1, 2]), throws: .zeroStackID)
        let deep = [UInt64](repeating: 0x400000, count: Int(LR_DEFAULT_DEPTH) + 1)
        try assertRecord(Rec.stack(4, deep), throws: .depthTooLarge(depth: LR_DEFAULT_DEPTH + 1, maxDepth: LR_DEFAULT_DEPTH))
        try assertRecord(Rec.stack(4, [1, 2, 3], depth: 2), throws: .stackSizeMismatch(size: 40, depth: 2))
        try assertRecord(Rec.module(1, path: "/x", buildID: [], bias: 0, lo: 0, hi: 1, pathLen: 5000), throws: .pathTooLong(length: 5000))
        try assertRecord(Rec.module(1, path: "/lib/x.so", buildID: [], bias: 0, lo: 0, hi: 1, pathLen: 30), throws: .moduleSizeMismatch(size: 88, pathLength: 30))
        try assertRecord(Rec.module(1, path: "/x", buildID: [1], bias: 0, lo: 0, hi: 1, buildIDLen: 33), throws: .buildIDTooLong(length: 33))
    }

    func testCursorChecks() throws {
        let size = UInt64(LR_MIN_DATA_SIZE)
        let ring = try TestRing()
        ring.setCursor(pos: size + 8)
        let reader = RingReader(mapping: try ring.mapping())
        // Launch mode checks where it starts, and every drain checks again.
        XCTAssertThrowsError(try reader.attach(mode: .launch)) {
            XCTAssertEqual($0 as? RingError, .corrupt(pid: me, position: 0, problem: .cursorBeyondData(distance: size + 8, dataSize: size)))
        }
        ring.setCursor(pos: 0)
        try reader.attach(mode: .launch)
        ring.setCursor(pos: size + 8)
        XCTAssertThrowsError(try collect(reader)) {
            XCTAssertEqual($0 as? RingError, .corrupt(pid: me, position: 0, problem: .cursorBeyondData(distance: size + 8, dataSize: size)))
        }
        ring.setCursor(pos: 12)
        XCTAssertThrowsError(try collect(reader)) {
            XCTAssertEqual($0 as? RingError, .corrupt(pid: me, position: 0, problem: .cursorUnaligned(position: 12)))
        }
    }

    func testSizeZeroForeverIsAnUncommittedRecordNotAnError() throws {
        let ring = try TestRing()
        ring.append([UInt8](repeating: 0, count: 64))
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let r = try reader.drain { _ in XCTFail("nothing is committed") }
        XCTAssertEqual(r, DrainResult(records: 0, bytes: 0, uncommittedBytes: 64))
        XCTAssertEqual(try reader.drainToEnd { _ in }, 64)
    }

    func testNoRingAndNoProcessMessages() throws {
        // This test process has no ring.
        XCTAssertThrowsError(try RingMapping.open(pid: me)) { XCTAssertEqual($0 as? RingError, .noRing(pid: me)) }
        XCTAssertTrue(RingError.noRing(pid: me).description.contains("LD_PRELOAD="))
        // Pids are below pid_max (at most 2^22): this one cannot exist.
        XCTAssertThrowsError(try RingMapping.open(pid: 99_999_999)) { XCTAssertEqual($0 as? RingError, .noSuchProcess(pid: 99_999_999)) }
        XCTAssertEqual(RingError.noSuchProcess(pid: 1234).description, "no such process 1234")
        XCTAssertEqual(
            RingError.corrupt(pid: 1234, position: 4096, problem: .sizeNotMultipleOf8(size: 3)).description,
            "ring of pid 1234 is corrupt at position 4096: record size 3 is not a multiple of 8")
    }

    func testFindsATestRingThroughProc() throws {
        let ring = try TestRing()
        ring.append(Rec.free(0x77))
        let mapping = try RingMapping.open(pid: me)
        XCTAssertEqual(mapping.ringPID, me)
        let reader = RingReader(mapping: mapping)
        try reader.attach(mode: .launch)
        XCTAssertEqual(try collect(reader), [.free(address: 0x77, kind: .heap, pending: false)])
        withExtendedLifetime(ring) {}
    }
}
