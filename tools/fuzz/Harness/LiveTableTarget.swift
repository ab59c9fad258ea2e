import Glibc
import RingFormat
@testable import ShimSource
import Tracking
import Vocabulary

/// The shim's live table (leakring.h, "The live table") as a hostile process could leave it, read as a
/// late attach or a resync reads it, next to a valid empty ring. The input is a list of writes into the
/// table's sparse file, each a region byte (0 header, 1 module log, 2 stack index, 3 stack pool,
/// 4 and up the hash segments 0 and 1), a little-endian u32 offset into that region (wrapped to fit) and
/// u16 length, then the bytes. Unless the first byte is odd, the header's identity (magic, version,
/// sizes, the ring it belongs to) is then made to match, so the fuzzer explores what lies behind it.
/// More than two segments are cut to two, to keep an execution short; more than the maximum is kept.
/// The table is read twice (the module log is read on from where it stopped): into a tracker as an attach
/// does, then as a resync does, a slice at a time.
enum LiveTableTarget {
    static let ringPID: Int32 = 4242
    static let ringStart: UInt64 = 77_000_000_000

    static func run(_ input: UnsafeRawBufferPointer) {
        guard let ring = makeRing() else { return }
        let fd = lr_memfd_create("leakfuzz-live", LR_MFD_CLOEXEC | LR_MFD_ALLOW_SEALING)
        guard fd >= 0, ftruncate(fd, off_t(lr_live_file_size())) == 0 else { fatalError("leakfuzz: live memfd: \(errno)") }
        let regions: [(offset: UInt64, size: UInt64)] = [
            (0, UInt64(LR_LIVE_HEADER_SIZE)),
            (lr_live_modlog_offset(), lr_live_modlog_size()),
            (lr_live_stackidx_offset(), lr_live_pool_offset() - lr_live_stackidx_offset()),
            (lr_live_pool_offset(), lr_live_pool_size()),
            (lr_live_segment_offset(0), lr_live_segment_slots(0) * 32),
            (lr_live_segment_offset(1), lr_live_segment_slots(1) * 32),
        ]
        var pos = 1
        while pos + 7 <= input.count {
            let region = regions[Int(input[pos]) % regions.count]
            let offset = UInt64(input.loadUnaligned(fromByteOffset: pos + 1, as: UInt32.self).littleEndian) % region.size
            let length = min(Int(input.loadUnaligned(fromByteOffset: pos + 5, as: UInt16.self).littleEndian), input.count - pos - 7)
            let take = min(length, Int(region.size - offset))
            _ = pwrite(fd, input.baseAddress! + pos + 7, take, off_t(region.offset + offset))
            pos += 7 + length
        }
        var h = lr_live_header()
        let hn = MemoryLayout<lr_live_header>.size
        _ = pread(fd, &h, hn, 0)
        if input.first.map({ $0 & 1 == 0 }) ?? true {
            h.magic = LR_LIVE_MAGIC
            h.version = LR_LIVE_VERSION
            h.header_size = LR_LIVE_HEADER_SIZE
            h.file_size = lr_live_file_size()
            h.pid = ringPID
            h.ring_start_monotonic_ns = ringStart
        }
        if h.segments > 2 && h.segments <= LR_LIVE_MAX_SEGMENTS { h.segments = 2 }
        _ = pwrite(fd, &h, hn, 0)
        guard lr_add_seals(fd, Int32(LR_SEALS_APPLIED)) == 0 else { fatalError("leakfuzz: live seals: \(errno)") }

        let table: LiveTable
        do { table = try LiveTable(fd: fd, ring: ring) } catch { return }
        let decoder = RingReader(mapping: ring)
        let tracker = Tracker(maxDepth: Int(ring.maxDepth), now: ringStart)
        let space = tracker.openSpace(SpaceInfo(kind: .user, pid: 1, command: ["fuzz"], startNs: ringStart))
        let knows = { (id: UInt32) in tracker.knowsStack(UInt64(id), in: space) }
        let define = { (d: StackDefinition) in tracker.apply(.stack(d), in: space) }
        for round in 0..<2 {
            guard var scan = try? table.beginScan(decoder: decoder) else { break }
            scan.takeModuleEvents().forEach { tracker.apply($0, in: space) }
            // The first as an attach reads it, at once; the second as a resync does, in small slices.
            if round == 0 {
                table.scan(&scan, budget: .max, knows: knows, define: define) { tracker.apply(.alloc($0.allocation), in: space) }
            } else if tracker.beginResync(space, kind: .heap) {
                while !scan.done { table.scan(&scan, budget: 1000, knows: knows, define: define) { tracker.resync(space, block: $0) } }
                _ = tracker.finishResync(space, kind: .heap)
            }
        }
        _ = tracker.cut(at: ringStart &+ 1)
    }

    /// A valid, empty ring of the smallest size that the table says it belongs to.
    private static func makeRing() -> RingMapping? {
        let dataSize = Int(LR_MIN_DATA_SIZE)
        let fd = lr_memfd_create("leakfuzz-live-ring", LR_MFD_CLOEXEC | LR_MFD_ALLOW_SEALING)
        guard fd >= 0, ftruncate(fd, off_t(Int(LR_HEADER_SIZE) + dataSize)) == 0 else { fatalError("leakfuzz: ring memfd: \(errno)") }
        var h = lr_header()
        h.magic = LR_MAGIC
        h.version = LR_VERSION
        h.header_size = LR_HEADER_SIZE
        h.data_size = UInt64(dataSize)
        h.max_depth = 64
        h.pid = ringPID
        h.start_monotonic_ns = ringStart
        _ = pwrite(fd, &h, MemoryLayout<lr_header>.size, 0)
        guard lr_add_seals(fd, Int32(LR_SEALS_APPLIED)) == 0 else { fatalError("leakfuzz: ring seals: \(errno)") }
        return try? RingMapping(fd: fd, pid: getpid())
    }
}
