import CLibBPF
import XCTest

@testable import UprobeSource

/// The uprobe programs' records (bpf/uprobe_events.h) decode only within their length.
final class UprobeRecordTests: XCTestCase {
    private func decode(_ bytes: [UInt8]) -> UprobeRecord? {
        bytes.withUnsafeBytes { raw in raw.baseAddress.flatMap { UprobeRecord.decode($0, size: raw.count) } }
    }

    private func bytes<T>(of value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    private func header(_ type: ue_type, _ function: ue_function, flags: UInt16 = 0) -> ue_header {
        ue_header(time_ns: 77, tid: 5, type: UInt8(type.rawValue), function: UInt8(function.rawValue), flags: flags)
    }

    func testAnAllocationWithInlineFramesAndItsTruncations() {
        var a = ue_alloc()
        a.h = header(UE_ALLOC, UE_FN_REALLOC)
        a.address = 0x1000
        a.size = 24
        a.old_address = 0x2000
        a.stack_id = -17
        a.nr_frames = 2
        let record = bytes(of: a) + bytes(of: UInt64(0xaaaa)) + bytes(of: UInt64(0xbbbb))
        XCTAssertEqual(
            decode(record),
            .alloc(address: 0x1000, size: 24, function: .realloc, kind: .heap, backing: nil, replaces: 0x2000, stackID: -17,
                   inlineFrames: [0xaaaa, 0xbbbb], time: 77, tid: 5))
        // Frames it claims but does not carry, and a record cut inside its fixed part.
        XCTAssertNil(decode(Array(record.dropLast(1))))
        XCTAssertNil(decode(Array(bytes(of: a).prefix(MemoryLayout<ue_alloc>.size - 1))))
        XCTAssertNil(decode(Array(bytes(of: a.h).prefix(3))))
    }

    func testMappingsReleasesAndUnknownCodes() {
        var m = ue_alloc()
        m.h = header(UE_ALLOC, UE_FN_MMAP, flags: UInt16(UE_F_FILE))
        m.address = 0x7000
        m.size = 4096
        m.stack_id = 3
        XCTAssertEqual(
            decode(bytes(of: m)),
            .alloc(address: 0x7000, size: 4096, function: .mmap, kind: .mmap, backing: .file, replaces: nil, stackID: 3, inlineFrames: [],
                   time: 77, tid: 5))
        var r = ue_release()
        r.h = header(UE_MUNMAP, UE_FN_MREMAP, flags: UInt16(UE_F_PENDING))
        r.address = 0x7000
        r.length = 8192
        XCTAssertEqual(decode(bytes(of: r)), .unmap(address: 0x7000, length: 8192, pending: true))
        r.h = header(UE_UNDO, UE_FN_MREMAP)
        XCTAssertEqual(decode(bytes(of: r)), .undo(address: 0x7000, kind: .mmap))
        r.h = header(UE_UNDO, UE_FN_MALLOC)
        XCTAssertNil(decode(bytes(of: r)), "only realloc and mremap undo")
        r.h = header(UE_FREE, UE_FN_FREE)
        XCTAssertEqual(decode(bytes(of: r)), .free(address: 0x7000, pending: false))
        r.h.type = 99
        XCTAssertNil(decode(bytes(of: r)))
        m.h = header(UE_ALLOC, UE_FN_FREE)
        XCTAssertNil(decode(bytes(of: m)), "free is no allocation")
    }
}
