import CollectionRunner
import ShimSource
import Tracking
import Glibc
import RingFormat
import SessionStore
import Vocabulary
import XCTest

/// A ring built by the test itself: a sealed memfd with a header the test fills and records written with
/// the C structs of leakring.h, so the reader is checked against the one layout definition.
final class TestRing {
    let fd: Int32
    let dataSize: UInt64
    let header: UnsafeMutablePointer<lr_header>
    private let base: UnsafeMutableRawPointer
    private let fileSize: Int
    /// The next position `append` writes at.
    var writePos: UInt64 = 0

    init(dataSize: UInt64 = UInt64(LR_MIN_DATA_SIZE), fileSize: Int? = nil, seal: Bool = true, start: UInt64 = 0,
         configure: (inout lr_header) -> Void = { _ in }) throws {
        self.dataSize = dataSize
        let size = fileSize ?? Int(LR_HEADER_SIZE) + Int(dataSize)
        self.fileSize = size
        fd = lr_memfd_create("leakshim-ring", LR_MFD_CLOEXEC | LR_MFD_ALLOW_SEALING)
        guard fd >= 0, ftruncate(fd, off_t(size)) == 0 else { throw TestRingError("memfd: errno \(errno)") }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw TestRingError("mmap: errno \(errno)")
        }
        base = p
        header = p.bindMemory(to: lr_header.self, capacity: 1)
        var h = lr_header()
        h.magic = LR_MAGIC
        h.version = LR_VERSION
        h.header_size = LR_HEADER_SIZE
        h.data_size = dataSize
        h.max_depth = LR_DEFAULT_DEPTH
        h.pid = getpid()
        h.start_realtime_ns = 1_700_000_000_000_000_000
        h.start_monotonic_ns = 42
        h.cursor = start
        h.read_pos = start
        configure(&h)
        header.pointee = h
        writePos = start
        if seal { guard lr_add_seals(fd, Int32(LR_SEALS_APPLIED)) == 0 else { throw TestRingError("seal: errno \(errno)") } }
    }

    deinit {
        munmap(base, fileSize)
        close(fd)
    }

    /// A mapping of this ring as the collector would make it (of a duplicate descriptor).
    func mapping() throws -> RingMapping { try RingMapping(fd: dup(fd), pid: getpid()) }

    /// Writes bytes at a ring position, wrapping at the end of the data region like the double mapping.
    func put(_ bytes: [UInt8], at pos: UInt64) {
        let data = base + Int(LR_HEADER_SIZE)
        for (i, b) in bytes.enumerated() {
            data.storeBytes(of: b, toByteOffset: Int((pos + UInt64(i)) & (dataSize - 1)), as: UInt8.self)
        }
    }

    /// Writes a record at the write position and moves it; `commit: false` leaves its size word 0.
    @discardableResult
    func append(_ bytes: [UInt8], commit: Bool = true, advanceCursor: Bool = true) -> UInt64 {
        let at = writePos
        var b = bytes
        if !commit { b.replaceSubrange(0..<4, with: [0, 0, 0, 0]) }
        put(b, at: at)
        writePos += UInt64(bytes.count)
        if advanceCursor { setCursor(pos: writePos) }
        return at
    }

    func setCursor(pos: UInt64, gen: UInt64? = nil) {
        let g = gen ?? (header.pointee.cursor >> 48)
        header.pointee.cursor = g << 48 | pos
    }

    func commit(at pos: UInt64, size: UInt32) {
        put(withUnsafeBytes(of: size) { Array($0) }, at: pos)
    }

    func byte(at pos: UInt64) -> UInt8 {
        (base + Int(LR_HEADER_SIZE)).load(fromByteOffset: Int(pos & (dataSize - 1)), as: UInt8.self)
    }
}

struct TestRingError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Record bytes from the C structs, the way the shim lays them out.
enum Rec {
    static func bytes<T>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    static func header(_ size: Int, _ type: lr_type, _ fn: lr_fn = LR_FN_NONE, flags: UInt32 = 0) -> lr_record {
        lr_record(size: UInt32(size), type: UInt8(type.rawValue), fn: UInt8(fn.rawValue), flags: UInt16(flags))
    }

    static func alloc(_ addr: UInt64, _ size: UInt64, fn: lr_fn = LR_FN_MALLOC, stack: UInt32 = 1, old: UInt64 = 0,
                      tid: UInt32 = 7, time: UInt64 = 1000) -> [UInt8] {
        var a = lr_alloc()
        a.h = header(MemoryLayout<lr_alloc>.size, LR_T_ALLOC, fn)
        a.stack_id = stack
        a.tid = tid
        a.addr = addr
        a.size = size
        a.old_addr = old
        a.time_ns = time
        return bytes(a)
    }

    static func mmap(_ addr: UInt64, _ len: UInt64, fn: lr_fn = LR_FN_MMAP, file: Bool = false, old: UInt64 = 0,
                     stack: UInt32 = 2) -> [UInt8] {
        var m = lr_mmap()
        m.h = header(MemoryLayout<lr_mmap>.size, LR_T_MMAP, fn, flags: file ? LR_F_FILE : 0)
        m.stack_id = stack
        m.tid = 8
        m.addr = addr
        m.len = len
        m.old_addr = old
        m.time_ns = 2000
        m.prot = 3
        m.map_flags = 0x22
        return bytes(m)
    }

    static func free(_ addr: UInt64, fn: lr_fn = LR_FN_FREE, pending: Bool = false) -> [UInt8] {
        var f = lr_free()
        f.h = header(MemoryLayout<lr_free>.size, LR_T_FREE, fn, flags: pending ? LR_F_PENDING : 0)
        f.addr = addr
        return bytes(f)
    }

    static func munmap(_ addr: UInt64, _ len: UInt64, fn: lr_fn = LR_FN_MUNMAP, pending: Bool = false) -> [UInt8] {
        var u = lr_munmap()
        u.h = header(MemoryLayout<lr_munmap>.size, LR_T_MUNMAP, fn, flags: pending ? LR_F_PENDING : 0)
        u.addr = addr
        u.len = len
        return bytes(u)
    }

    static func undo(_ addr: UInt64, fn: lr_fn) -> [UInt8] {
        var u = lr_undo()
        u.h = header(MemoryLayout<lr_undo>.size, LR_T_UNDO, fn)
        u.addr = addr
        return bytes(u)
    }

    static func stack(_ id: UInt32, _ frames: [UInt64], truncated: Bool = false, depth: UInt32? = nil) -> [UInt8] {
        var s = lr_stack()
        s.h = header(MemoryLayout<lr_stack>.size + 8 * frames.count, LR_T_STACK, flags: truncated ? LR_F_TRUNCATED : 0)
        s.stack_id = id
        s.depth = depth ?? UInt32(frames.count)
        return bytes(s) + frames.flatMap { bytes($0) }
    }

    static func module(_ id: UInt32, path: String, buildID: [UInt8], bias: UInt64, lo: UInt64, hi: UInt64,
                       pathLen: UInt16? = nil, buildIDLen: UInt8? = nil) -> [UInt8] {
        var m = lr_module()
        let p = Array(path.utf8)
        let size = Int(lr_round8(UInt32(MemoryLayout<lr_module>.size + p.count)))
        m.h = header(size, LR_T_MODULE)
        m.module_id = id
        m.path_len = pathLen ?? UInt16(p.count)
        m.build_id_len = buildIDLen ?? UInt8(buildID.count)
        m.bias = bias
        m.lo = lo
        m.hi = hi
        withUnsafeMutableBytes(of: &m.build_id) { dst in for (i, b) in buildID.prefix(32).enumerated() { dst[i] = b } }
        let raw = bytes(m) + p
        return raw + [UInt8](repeating: 0, count: size - raw.count)
    }

    static func unmodule(_ id: UInt32) -> [UInt8] {
        var u = lr_unmodule()
        u.h = header(MemoryLayout<lr_unmodule>.size, LR_T_UNMODULE)
        u.module_id = id
        return bytes(u)
    }

    /// Rewrites the size word of record bytes.
    static func resized(_ bytes: [UInt8], _ size: UInt32) -> [UInt8] {
        var b = bytes
        b.replaceSubrange(0..<4, with: Rec.bytes(size))
        return b
    }
}

func collect(_ reader: RingReader, maxRecords: Int = .max) throws -> [Event] {
    var events: [Event] = []
    try reader.drain(maxRecords: maxRecords) { events.append($0) }
    return events
}

final class RingDecodeTests: XCTestCase {
    func testDecodesEveryRecordType() throws {
        let ring = try TestRing()
        let frames: [UInt64] = [0x401234, 0x401300, 0x7f00_0000_1000]
        let buildID: [UInt8] = [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        ring.append(Rec.module(3, path: "/usr/lib/libfoo.so", buildID: buildID, bias: 0x7f00_0000_0000, lo: 0x7f00_0000_0000, hi: 0x7f00_0002_0000))
        ring.append(Rec.stack(1, frames))
        ring.append(Rec.stack(2, [0x1], truncated: true))
        ring.append(Rec.alloc(0x1000, 24, fn: LR_FN_CALLOC, stack: 1, tid: 99, time: 555))
        ring.append(Rec.free(0x1000, fn: LR_FN_REALLOC, pending: true))
        ring.append(Rec.alloc(0x2000, 48, fn: LR_FN_REALLOC, stack: 0, old: 0x1000))
        ring.append(Rec.undo(0x2000, fn: LR_FN_REALLOC))
        ring.append(Rec.mmap(0x10000, 8192, file: false))
        ring.append(Rec.mmap(0x20000, 100, file: true))
        ring.append(Rec.munmap(0x10000, 4096, fn: LR_FN_MREMAP, pending: true))
        ring.append(Rec.mmap(0x30000, 16384, fn: LR_FN_MREMAP, old: 0x10000))
        ring.append(Rec.undo(0x30000, fn: LR_FN_MREMAP))
        ring.append(Rec.munmap(0x20000, 4096))
        ring.append(Rec.free(0x2000))
        ring.append(Rec.unmodule(3))

        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let events = try collect(reader)
        let expected: [Event] = [
            .module(ModuleInfo(id: 3, path: "/usr/lib/libfoo.so", buildID: buildID, bias: 0x7f00_0000_0000, lo: 0x7f00_0000_0000, hi: 0x7f00_0002_0000)),
            .stack(StackDefinition(id: UInt64(1), frames: frames, truncated: false)),
            .stack(StackDefinition(id: UInt64(2), frames: [0x1], truncated: true)),
            .alloc(Allocation(address: 0x1000, size: 24, kind: .heap, function: .calloc, stack: .local(UInt64(1)), time: 555, tid: 99)),
            .free(address: 0x1000, kind: .heap, pending: true),
            .alloc(Allocation(address: 0x2000, size: 48, kind: .heap, function: .realloc, stack: .none, time: 1000, tid: 7, replaces: 0x1000)),
            .undo(address: 0x2000, kind: .heap),
            .alloc(Allocation(address: 0x10000, size: 8192, kind: .mmap, function: .mmap, stack: .local(UInt64(2)), time: 2000, tid: 8, backing: .anonymous)),
            .alloc(Allocation(address: 0x20000, size: 100, kind: .mmap, function: .mmap, stack: .local(UInt64(2)), time: 2000, tid: 8, backing: .file)),
            .unmap(address: 0x10000, length: 4096, pending: true),
            .alloc(Allocation(address: 0x30000, size: 16384, kind: .mmap, function: .mremap, stack: .local(UInt64(2)), time: 2000, tid: 8, replaces: 0x10000)),
            .undo(address: 0x30000, kind: .mmap),
            .unmap(address: 0x20000, length: 4096, pending: false),
            .free(address: 0x2000, kind: .heap, pending: false),
            .moduleUnload(id: 3, time: 0),
        ]
        XCTAssertEqual(events, expected)
        // Consumed bytes are zeroed and released, so the writers' next lap finds size 0 everywhere.
        XCTAssertEqual(ring.header.pointee.read_pos, ring.writePos)
        XCTAssertEqual((0..<ring.writePos).filter { ring.byte(at: $0) != 0 }.count, 0)
        XCTAssertEqual(reader.position, ring.writePos)
        XCTAssertEqual(reader.info.pid, getpid())
        XCTAssertEqual(reader.info.dataSize, UInt64(LR_MIN_DATA_SIZE))
        XCTAssertEqual(reader.info.maxDepth, LR_DEFAULT_DEPTH)
        XCTAssertEqual(reader.info.startMonotonicNs, 42)
        XCTAssertFalse(reader.info.expectsCollector)
        XCTAssertEqual(ring.header.pointee.reader_pid, getpid())
        reader.detach()
        XCTAssertEqual(ring.header.pointee.reader_pid, 0)
    }

    func testEveryAllocFunctionMapsToItsName() throws {
        let ring = try TestRing()
        let fns: [(lr_fn, AllocFunction)] = [
            (LR_FN_MALLOC, .malloc), (LR_FN_CALLOC, .calloc), (LR_FN_REALLOC, .realloc), (LR_FN_REALLOCARRAY, .reallocarray),
            (LR_FN_POSIX_MEMALIGN, .posixMemalign), (LR_FN_ALIGNED_ALLOC, .alignedAlloc), (LR_FN_MEMALIGN, .memalign),
            (LR_FN_VALLOC, .valloc), (LR_FN_PVALLOC, .pvalloc),
        ]
        for (i, f) in fns.enumerated() { ring.append(Rec.alloc(UInt64(0x1000 * (i + 1)), UInt64(i), fn: f.0)) }
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let got: [AllocFunction] = try collect(reader).compactMap { if case .alloc(let a) = $0 { return a.function } else { return nil } }
        XCTAssertEqual(got, fns.map { $0.1 })
    }

    func testRecordRunningPastTheEndIsReadThroughTheSecondMapping() throws {
        let size = UInt64(LR_MIN_DATA_SIZE)
        // Start 16 bytes before the end: the 40-byte stack record continues at offset 0.
        let ring = try TestRing(start: 3 * size - 16)
        let frames: [UInt64] = [0xaaaa, 0xbbbb, 0xcccc]
        ring.append(Rec.stack(9, frames))
        ring.append(Rec.alloc(0x5000, 1, stack: 9))
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let events = try collect(reader)
        XCTAssertEqual(events.count, 2)
        XCTAssertEqual(events.first, .stack(StackDefinition(id: UInt64(9), frames: frames, truncated: false)))
        XCTAssertEqual(reader.position, 3 * size - 16 + 40 + 48)
    }

    func testStopsAtAnUncommittedRecordAndResumesOnceCommitted() throws {
        let ring = try TestRing()
        ring.append(Rec.free(0x10))
        let pending = ring.append(Rec.alloc(0x20, 5), commit: false)
        ring.append(Rec.free(0x30))
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        var result = DrainResult()
        var events: [Event] = []
        result = try reader.drain { events.append($0) }
        XCTAssertEqual(events, [.free(address: 0x10, kind: .heap, pending: false)])
        XCTAssertEqual(result.records, 1)
        XCTAssertEqual(result.uncommittedBytes, 48 + 16)
        ring.commit(at: pending, size: 48)
        events = try collect(reader)
        XCTAssertEqual(events.count, 2)
        XCTAssertEqual(events.last, .free(address: 0x30, kind: .heap, pending: false))
    }

    func testStuckRecordOfADeadWriterEndsTheFinalDrainWithItsBytesCounted() throws {
        let ring = try TestRing()
        ring.append(Rec.free(0x10))
        ring.append(Rec.alloc(0x20, 5), commit: false)
        ring.append(Rec.free(0x30))
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        var count = 0
        let unreadable = try reader.drainToEnd { _ in count += 1 }
        XCTAssertEqual(count, 1)
        XCTAssertEqual(unreadable, 64)
    }

    func testMaxRecordsLimitsOneDrain() throws {
        let ring = try TestRing()
        for i in 0..<10 { ring.append(Rec.free(UInt64(i) * 16)) }
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        XCTAssertEqual(try collect(reader, maxRecords: 4).count, 4)
        XCTAssertEqual(ring.header.pointee.read_pos, 64)
        XCTAssertEqual(try collect(reader).count, 6)
    }

    /// A sink that notes the addresses it was asked to prefetch, and says whether it wants to be asked.
    private struct HintCountingSink: EventSink {
        let wantsHints: Bool
        var hinted: [UInt64] = []
        var frees = 0
        mutating func alloc(_ a: Allocation) {}
        mutating func free(address: UInt64, kind: BlockKind, pending: Bool) { frees += 1 }
        mutating func unmap(address: UInt64, length: UInt64, pending: Bool) {}
        mutating func undo(address: UInt64, kind: BlockKind) {}
        mutating func event(_ e: Event) {}
        var hintsWorthFetching: Bool { wantsHints }
        // lookupHint is not mutating: what it is asked goes to a box the test reads.
        let box = HintBox()
        func lookupHint(address: UInt64, kind: BlockKind) -> UnsafeRawPointer? {
            box.addresses.append(address)
            return nil
        }
    }
    private final class HintBox { var addresses: [UInt64] = [] }

    func testTheLookAheadAsksForHintsOnlyWhenTheSinkWantsThem() throws {
        for wants in [true, false] {
            let ring = try TestRing()
            ring.append(Rec.alloc(0x1000, 24))
            for i in 1...20 { ring.append(Rec.free(UInt64(i) * 0x100)) }
            let reader = RingReader(mapping: try ring.mapping())
            try reader.attach(mode: .launch)
            var sink = HintCountingSink(wantsHints: wants)
            try reader.drain(into: &sink)
            XCTAssertEqual(sink.frees, 20, "every record is still decoded")
            // Asked for every ALLOC and FREE address once, in order, or for none.
            XCTAssertEqual(sink.box.addresses, wants ? [0x1000] + (1...20).map { UInt64($0) * 0x100 } : [])
        }
    }

    func testAttachBumpsTheGenerationDiscardsEarlierRecordsAndCountsFromThere() throws {
        let ring = try TestRing { $0.cursor = 5 << 48 }
        ring.setCursor(pos: 0, gen: 5)
        ring.append(Rec.alloc(0x1000, 1))
        ring.append(Rec.free(0x1000))
        ring.header.pointee.lost_events = 5
        ring.header.pointee.truncated_stacks = 2
        let attachPoint = ring.writePos
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .attach)
        XCTAssertEqual(ring.header.pointee.cursor >> 48, 6)
        XCTAssertEqual(ring.header.pointee.cursor & ((1 << 48) - 1), attachPoint)
        XCTAssertEqual(ring.header.pointee.read_pos, attachPoint)
        XCTAssertEqual((0..<attachPoint).filter { ring.byte(at: $0) != 0 }.count, 0, "old records must be zeroed")
        XCTAssertEqual(reader.counters, RingCounters())
        ring.append(Rec.free(0x2000))
        ring.header.pointee.lost_events = 7
        XCTAssertEqual(try collect(reader), [.free(address: 0x2000, kind: .heap, pending: false)])
        var expected = RingCounters()
        expected.lostEvents = 2
        XCTAssertEqual(reader.counters, expected)
    }

    func testAttachWaitsForInFlightRecordsBeforeTheAttachPoint() throws {
        let ring = try TestRing()
        let slow = ring.append(Rec.alloc(0x1000, 1), commit: false)
        let reader = RingReader(mapping: try ring.mapping())
        let committer = Thread { usleep(50_000); ring.commit(at: slow, size: 48) }
        committer.start()
        let t0 = ContinuousClock.now
        try reader.attach(mode: .attach, settle: .seconds(5))
        let waited = ContinuousClock.now - t0
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(40), "attach returned before the in-flight record committed")
        XCTAssertLessThan(waited, .seconds(4))
        XCTAssertEqual(ring.byte(at: slow), 0, "the committed size word was zeroed")
        XCTAssertEqual(reader.position, 48)
    }

    func testRefusesARingAnotherLiveCollectorHolds() throws {
        let ring = try TestRing()
        ring.header.pointee.reader_pid = 1
        ring.header.pointee.reader_heartbeat_ns = lr_monotonic_ns()
        let reader = RingReader(mapping: try ring.mapping())
        XCTAssertThrowsError(try reader.attach(mode: .attach)) { error in
            XCTAssertEqual(error as? RingError, .anotherCollector(pid: getpid(), readerPID: 1))
        }
        // A collector whose heartbeat went stale is gone: take over.
        ring.header.pointee.reader_heartbeat_ns = lr_monotonic_ns() - 2 * LR_HEARTBEAT_NS
        XCTAssertNoThrow(try reader.attach(mode: .attach))
        XCTAssertEqual(ring.header.pointee.reader_pid, getpid())
    }

    func testSleepReturnsWhenAWriterWakesTheFutex() throws {
        let ring = try TestRing()
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let writer = Thread {
            while lr_load_acquire_u32(&ring.header.pointee.reader_sleeping) == 0 { usleep(100) }
            usleep(10_000)
            ring.append(Rec.free(0x40))
            if lr_exchange_u32(&ring.header.pointee.reader_sleeping, 0) == 1 { _ = lr_futex_wake(&ring.header.pointee.reader_sleeping) }
        }
        writer.start()
        let t0 = ContinuousClock.now
        XCTAssertTrue(reader.sleepUntilData(timeout: .milliseconds(240)))
        XCTAssertLessThan(ContinuousClock.now - t0, .milliseconds(200), "slept through the wake-up")
        XCTAssertEqual(try collect(reader), [.free(address: 0x40, kind: .heap, pending: false)])
        XCTAssertEqual(ring.header.pointee.reader_sleeping, 0)
        // With nothing written, it sleeps out the timeout and says so.
        let t1 = ContinuousClock.now
        XCTAssertFalse(reader.sleepUntilData(timeout: .milliseconds(30)))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - t1, .milliseconds(25))
    }

    func testHeartbeatAdvances() throws {
        let ring = try TestRing()
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let first = ring.header.pointee.reader_heartbeat_ns
        usleep(2000)
        reader.heartbeat()
        XCTAssertGreaterThan(ring.header.pointee.reader_heartbeat_ns, first)
        XCTAssertLessThanOrEqual(ring.header.pointee.reader_heartbeat_ns, lr_monotonic_ns())
    }
}
