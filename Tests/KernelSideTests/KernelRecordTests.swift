import CLibBPF
@testable import KernelSide
import KernelSession
import Vocabulary
import XCTest

/// The kernel ring-buffer decoder on records the programs never write (issue 12, the kernel fuzz
/// target): short records, unknown kinds and steps, more inline frames claimed than sent, and OOM
/// sizes that do not fit 64 bits. Each decodes to nil or to clamped values, never a trap or a read
/// past the record. Pure: no BPF, no privileges.
final class KernelRecordTests: XCTestCase {
    /// Decodes `record` (plus `extra` words after it, cut to `size` bytes); inline frames are copied out
    /// before the buffer goes (they point into it, as into the ring buffer during the callback).
    private func decode<T>(_ record: T, size: Int? = nil, extra: [UInt64] = []) -> KernelRecord? { decodeCopying(record, size: size, extra: extra).0 }

    private func decodeCopying<T>(_ record: T, size: Int? = nil, extra: [UInt64] = []) -> (KernelRecord?, [UInt64]) {
        var bytes = withUnsafeBytes(of: record) { Array($0) }
        for f in extra { withUnsafeBytes(of: f) { bytes += $0 } }
        let n = size ?? bytes.count
        // Exactly the record's bytes, aligned as libbpf hands them: a read past them is caught by ASan in the fuzzer.
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 8)
        defer { buffer.deallocate() }
        bytes.prefix(n).withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: min(n, $0.count)) }
        let r = KernelRecord.decode(buffer, size: n)
        if case .alloc(_, _, _, let frames)? = r { return (r, Array(frames)) }
        return (r, [])
    }

    private func header(_ type: ke_type) -> ke_header {
        var h = ke_header()
        h.type = UInt8(type.rawValue)
        h.time_ns = 1000
        h.tgid = 42
        h.tid = 43
        return h
    }

    func testShortRecordsAndUnknownValuesAreSkipped() {
        var f = ke_free()
        f.h = header(KE_FREE)
        f.address = 0xffff_8880_0000_1000
        f.kind = UInt8(KE_KIND_SLAB.rawValue)
        guard case .free(let address, let kind)? = decode(f) else { return XCTFail("a valid free must decode") }
        XCTAssertEqual(address, 0xffff_8880_0000_1000)
        XCTAssertEqual(kind, .kernelSlab)
        XCTAssertNil(decode(f, size: MemoryLayout<ke_free>.size - 1), "a free one byte short")
        XCTAssertNil(decode(f, size: MemoryLayout<ke_header>.size - 1), "shorter than a header")
        f.kind = 7
        XCTAssertNil(decode(f), "a kind the programs never write")
        f.h.type = 99
        XCTAssertNil(decode(f), "an unknown type")

        var r = ke_reaper()
        r.h = header(KE_OOM_REAPER)
        r.step = 4
        XCTAssertNil(decode(r), "a reaper step past the last one")
        r.step = UInt32(KE_REAPER_SKIP.rawValue)
        guard case .reaper(let row)? = decode(r) else { return XCTFail("a valid reaper step must decode") }
        XCTAssertEqual(row.step, .skip)
    }

    func testInlineFramesAreCutToWhatTheRecordHolds() {
        var a = ke_alloc()
        a.h = header(KE_ALLOC)
        a.stack_id = -1
        a.nr_frames = 127
        a.kind = UInt8(KE_KIND_PAGE.rawValue)
        a.function = 9
        let (record, frames) = decodeCopying(a, extra: [0xffff_ffff_8100_0010, 0xffff_ffff_8100_0020])
        guard case .alloc(_, let kind, let function, _)? = record else { return XCTFail("an allocation must decode") }
        XCTAssertEqual(kind, .kernelPage)
        XCTAssertEqual(function, .unknown)
        XCTAssertEqual(frames, [0xffff_ffff_8100_0010, 0xffff_ffff_8100_0020], "127 frames claimed, 2 sent")

        a.stack_id = 5
        let (again, none) = decodeCopying(a, extra: [1, 2])
        guard case .alloc? = again else { return XCTFail("an allocation must decode") }
        XCTAssertEqual(none, [], "a stack-map id means no inline frames, whatever follows")
    }

    func testOOMSizesThatOverflowBecomeUnknown() {
        var o = ke_oom()
        o.h = header(KE_OOM_VICTIM)
        o.flags = UInt32(KE_OOM_HAS_TASK | KE_OOM_HAS_MEMCG)
        o.total_vm_pages = 300_000
        o.anon_rss_pages = UInt64.max / 2
        o.pgtables_bytes = UInt64.max
        o.memcg_usage_pages = UInt64.max / 4096 + 1
        o.memcg_max_pages = UInt64(Int64.max) / 4096
        o.memcg_depth = 1000
        guard case .oom(let decoded)? = decode(o) else { return XCTFail("an OOM record must decode") }
        let f = KernelRecord.oomFacts(decoded, pageSize: 4096)
        XCTAssertEqual(f.totalVmKB, 1_200_000)
        XCTAssertNil(f.anonRssKB, "UInt64.max / 2 pages of 4 kB do not fit 64 bits")
        XCTAssertEqual(f.pgtablesKB, UInt64.max / 1024)
        XCTAssertNil(f.memcgUsageBytes, "usage above 2^64 bytes")
        XCTAssertNil(f.memcgLimitBytes, "PAGE_COUNTER_MAX means no limit")
        // A depth beyond the names the record has reads only those names (all empty here: the root).
        XCTAssertEqual(f.memcg, "/" + Array(repeating: "", count: Int(KE_MEMCG_DEPTH) - 1).joined(separator: "/"))

        o.flags = 0
        let none = KernelRecord.oomFacts(o, pageSize: 4096)
        XCTAssertEqual(none, KernelRecord.OOMFacts(), "without the task and memcg flags the record's sizes mean nothing")
    }
}
