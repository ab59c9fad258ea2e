import Glibc
import RingFormat
import Vocabulary

/// The shim's counters from the ring header (see `lr_header`). After an attach they count from the attach.
public struct RingCounters: Sendable, Equatable {
    public var lostEvents: UInt64 = 0
    public var lostBytes: UInt64 = 0
    public var waits: UInt64 = 0
    public var reentrantCalls: UInt64 = 0
    public var stackTableFull: UInt64 = 0
    public var truncatedStacks: UInt64 = 0
    /// Nanoseconds writers spent waiting for the collector on a full ring, summed over threads.
    public var waitNs: UInt64 = 0
    /// LEAKSHIM_UNWIND=compare: stacks where the shim's own walk and libunwind's differed.
    public var unwindMismatches: UInt64 = 0
    /// Stacks the shim's own walk could not take and handed to libunwind.
    public var unwindFallbacks: UInt64 = 0
    /// CLOCK_MONOTONIC when the app unmapped its own ring (the shim tracked nothing after); 0 if it never did.
    public var ringUnmappedNs: UInt64 = 0

    public init() {}

    /// Each counter of `self` less the one in `base`, wrapping: the app may write anything there.
    func since(_ base: RingCounters) -> RingCounters {
        var d = RingCounters()
        d.lostEvents = lostEvents &- base.lostEvents
        d.lostBytes = lostBytes &- base.lostBytes
        d.waits = waits &- base.waits
        d.reentrantCalls = reentrantCalls &- base.reentrantCalls
        d.stackTableFull = stackTableFull &- base.stackTableFull
        d.truncatedStacks = truncatedStacks &- base.truncatedStacks
        d.waitNs = waitNs &- base.waitNs
        d.unwindMismatches = unwindMismatches &- base.unwindMismatches
        d.unwindFallbacks = unwindFallbacks &- base.unwindFallbacks
        d.ringUnmappedNs = ringUnmappedNs  // a time, not a count
        return d
    }
}

/// The facts the shim wrote into the ring header when it created the ring.
public struct RingInfo: Sendable, Equatable {
    /// The pid the shim saw (its own namespace's view).
    public var pid: Int32
    /// CLOCK_REALTIME at ring creation.
    public var startRealtimeNs: UInt64
    /// CLOCK_MONOTONIC at ring creation; event times use the same clock.
    public var startMonotonicNs: UInt64
    public var dataSize: UInt64
    public var maxDepth: UInt32
    /// The app was launched by a collector (LEAKSHIM_COLLECTOR_PID matched its parent).
    public var expectsCollector: Bool
    /// Allocations below this many bytes are sampled (Poisson, by bytes); nil: every one is recorded.
    public var sampleBytes: UInt64? = nil
}

/// What one `drain` call did.
public struct DrainResult: Sendable, Equatable {
    /// Records decoded (stack and module records included).
    public var records: Int = 0
    public var bytes: UInt64 = 0
    /// Bytes reserved past the read position whose first record is not committed yet: a writer is
    /// between reservation and commit, or died there.
    public var uncommittedBytes: UInt64 = 0

    public init(records: Int = 0, bytes: UInt64 = 0, uncommittedBytes: UInt64 = 0) {
        self.records = records
        self.bytes = bytes
        self.uncommittedBytes = uncommittedBytes
    }
}

/// Reads one process's ring (leakring.h reader protocol): attaches, decodes and validates committed
/// records in order into `Event`s, zeroes what it consumed and publishes its read position, keeps the
/// heartbeat, and sleeps on the futex word when the ring is empty. One thread uses a reader at a time.
public final class RingReader {
    /// How to start reading.
    public enum Mode: Sendable {
        /// A process this collector launched: read everything from the ring's start.
        case launch
        /// A process already running: bump the generation and read what comes after it.
        case attach
    }

    public let mapping: RingMapping
    private let header: UnsafeMutablePointer<lr_header>
    private let data: UnsafeMutableRawPointer
    private let dataSize: UInt64
    private let mask: UInt64
    private let maxDepth: UInt32
    private let pid: Int32
    private let me: Int32 = getpid()
    /// Where the next record starts; ours, never read back from the ring.
    public private(set) var position: UInt64 = 0
    private var zeroedUpTo: UInt64 = 0
    private var baseline = RingCounters()
    public private(set) var isAttached = false

    private static let posMask: UInt64 = (1 << UInt64(LR_POS_BITS)) &- 1

    public init(mapping: RingMapping) {
        self.mapping = mapping
        header = mapping.header
        data = mapping.data
        dataSize = mapping.dataSize
        mask = mapping.dataSize &- 1
        maxDepth = mapping.maxDepth
        pid = mapping.pid
    }

    deinit {
        if isAttached { detach() }
    }

    public var info: RingInfo {
        RingInfo(
            pid: mapping.ringPID, startRealtimeNs: mapping.startRealtimeNs, startMonotonicNs: mapping.startMonotonicNs,
            dataSize: dataSize, maxDepth: maxDepth, expectsCollector: mapping.flags & LR_FLAG_EXPECT_COLLECTOR != 0,
            sampleBytes: mapping.sampleBytes)
    }

    /// The shim's counters; in attach mode, what changed since the attach.
    public var counters: RingCounters { rawCounters().since(baseline) }

    private func rawCounters() -> RingCounters {
        var c = RingCounters()
        c.lostEvents = lr_load_acquire_u64(&header.pointee.lost_events)
        c.lostBytes = lr_load_acquire_u64(&header.pointee.lost_bytes)
        c.waits = lr_load_acquire_u64(&header.pointee.waits)
        c.reentrantCalls = lr_load_acquire_u64(&header.pointee.reentrant_calls)
        c.stackTableFull = lr_load_acquire_u64(&header.pointee.stack_table_full)
        c.truncatedStacks = lr_load_acquire_u64(&header.pointee.truncated_stacks)
        c.waitNs = lr_load_acquire_u64(&header.pointee.wait_ns)
        c.unwindMismatches = lr_load_acquire_u64(&header.pointee.unwind_mismatches)
        c.unwindFallbacks = lr_load_acquire_u64(&header.pointee.unwind_fallbacks)
        c.ringUnmappedNs = lr_load_acquire_u64(&header.pointee.ring_unmapped_ns)
        return c
    }

    private var writePosition: UInt64 { lr_load_acquire_u64(&header.pointee.cursor) & Self.posMask }

    /// Claims the ring. Refuses it while another collector's heartbeat is fresh. In attach mode, waits up
    /// to `settle` for records already reserved before the attach point to commit, then discards them.
    public func attach(mode: Mode, settle: Duration = .seconds(1)) throws(RingError) {
        let other = lr_load_acquire_i32(&header.pointee.reader_pid)
        if other != 0 && other != me {
            let age = Int64(bitPattern: lr_monotonic_ns() &- lr_load_acquire_u64(&header.pointee.reader_heartbeat_ns))
            // A collector that was SIGKILLed leaves a fresh heartbeat for up to a second: a dead pid is no claim.
            let alive = kill(other, 0) == 0 || errno == EPERM
            if age <= Int64(LR_HEARTBEAT_NS) && alive { throw .anotherCollector(pid: pid, readerPID: other) }
        }
        heartbeat()
        lr_store_release_i32(&header.pointee.reader_pid, me)
        let start = lr_load_acquire_u64(&header.pointee.read_pos) & Self.posMask
        switch mode {
        case .launch:
            let ahead = (writePosition &- start) & Self.posMask
            guard ahead <= dataSize else {
                throw .corrupt(pid: pid, position: start, problem: .cursorBeyondData(distance: ahead, dataSize: dataSize))
            }
            guard start & 7 == 0 else { throw .corrupt(pid: pid, position: start, problem: .cursorUnaligned(position: start)) }
            position = start
            baseline = RingCounters()
        case .attach:
            try jumpToNewGeneration(from: start, settle: settle)
            baseline = rawCounters()
        }
        zeroedUpTo = position
        isAttached = true
    }

    /// Bumps the generation in the cursor (its position is the new start P), waits up to `settle` for the
    /// records reserved before P to commit, discards them and reads from P on. Every record after P was
    /// reserved in the new generation, so the modules and stacks it needs come after P too.
    private func jumpToNewGeneration(from start: UInt64, settle: Duration) throws(RingError) {
        var c = lr_load_acquire_u64(&header.pointee.cursor)
        var next: UInt64
        repeat {
            let gen = (c >> UInt64(LR_POS_BITS)) &+ 1
            next = (gen << UInt64(LR_POS_BITS)) & ~Self.posMask | (c & Self.posMask)
        } while lr_cas_u64(&header.pointee.cursor, &c, next) == 0
        let attachPoint = c & Self.posMask
        guard attachPoint & 7 == 0 else {
            throw .corrupt(pid: pid, position: attachPoint, problem: .cursorUnaligned(position: attachPoint))
        }
        var from = start
        if (attachPoint &- from) & Self.posMask > dataSize || from & 7 != 0 { from = (attachPoint &- dataSize) & Self.posMask }
        settleInFlight(from: from, to: attachPoint, bound: settle)
        zero(from: from, to: attachPoint)
        position = attachPoint
        zeroedUpTo = position
        publish()
    }

    /// Resync: starts a new generation at the current write position P and returns P. The records before
    /// P stay readable (`drain(until:)` stops at P); every record after it was reserved in the new one.
    public func beginGeneration() throws(RingError) -> UInt64 {
        var c = lr_load_acquire_u64(&header.pointee.cursor)
        var next: UInt64
        repeat {
            let gen = (c >> UInt64(LR_POS_BITS)) &+ 1
            next = (gen << UInt64(LR_POS_BITS)) & ~Self.posMask | (c & Self.posMask)
        } while lr_cas_u64(&header.pointee.cursor, &c, next) == 0
        let point = c & Self.posMask
        guard point & 7 == 0, (point &- position) & Self.posMask <= dataSize else {
            throw .corrupt(pid: pid, position: point, problem: .cursorUnaligned(position: point))
        }
        return point
    }

    /// Gives up on the records before `point` that never committed (a writer died between reserving and
    /// committing): waits briefly, zeroes them and reads from `point` on.
    public func skip(to point: UInt64, settle: Duration = .milliseconds(100)) {
        guard (point &- position) & Self.posMask <= dataSize else { return }
        settleInFlight(from: position, to: point, bound: settle)
        zero(from: position, to: point)
        position = point
        zeroedUpTo = point
        publish()
    }

    /// Waits (bounded) until every record in [from, to) is committed, so that none lands after we zero it.
    private func settleInFlight(from: UInt64, to: UInt64, bound: Duration) {
        let deadline = ContinuousClock.now + bound
        var pos = from
        while pos != to {
            let size = lr_load_acquire_u32(recordPointer(pos).assumingMemoryBound(to: UInt32.self))
            if size == 0 {
                if ContinuousClock.now >= deadline { return }
                usleep(100)
                continue
            }
            let left = (to &- pos) & Self.posMask
            guard size & 7 == 0, UInt64(size) <= left else { return }  // garbage: zeroing it all is the answer
            pos = (pos &+ UInt64(size)) & Self.posMask
        }
    }

    @inline(__always) private func recordPointer(_ pos: UInt64) -> UnsafeMutableRawPointer {
        data + Int(truncatingIfNeeded: pos & mask)
    }

    /// Zeroes [from, to): at most the ring's size, contiguous thanks to the second mapping.
    private func zero(from: UInt64, to: UInt64) {
        let length = (to &- from) & Self.posMask
        if length > 0 && length <= dataSize { memset(recordPointer(from), 0, Int(length)) }
    }

    /// Zeroes what was consumed, then releases it to the writers (they must find size 0 on their next lap).
    private func publish() {
        zero(from: zeroedUpTo, to: position)
        zeroedUpTo = position
        lr_store_release_u64(&header.pointee.read_pos, position)
    }

    /// Refreshes the heartbeat; call it at least every quarter of LR_HEARTBEAT_NS, or writers stop waiting for us.
    public func heartbeat() {
        lr_store_release_u64(&header.pointee.reader_heartbeat_ns, lr_monotonic_ns())
    }

    /// Releases the ring: writers with a full ring drop from now on instead of waiting.
    public func detach() {
        guard isAttached else { return }
        publish()
        if lr_load_acquire_i32(&header.pointee.reader_pid) == me { lr_store_release_i32(&header.pointee.reader_pid, 0) }
        lr_store_release_u32(&header.pointee.reader_sleeping, 0)
        isAttached = false
    }

    /// True when writers have reserved bytes past the read position.
    public var hasData: Bool { writePosition != position }

    /// Bytes writers have reserved past the read position.
    public var backlogBytes: UInt64 { (writePosition &- position) & Self.posMask }

    /// Sleeps on the futex word until a writer wakes us (ring a quarter full) or `timeout` passes, capped at a
    /// quarter of the heartbeat period. Returns whether there is data to drain.
    public func sleepUntilData(timeout: Duration) -> Bool {
        if hasData { return true }
        heartbeat()
        let (s, atto) = timeout.components
        let wanted = UInt64(max(s, 0)) &* 1_000_000_000 &+ UInt64(max(atto, 0) / 1_000_000_000)
        let ns = min(wanted, LR_HEARTBEAT_NS / 4)
        _ = lr_exchange_u32(&header.pointee.reader_sleeping, 1)  // seq_cst: a writer's commit after it sees the flag
        if !hasData { _ = lr_futex_wait(&header.pointee.reader_sleeping, 1, ns) }
        lr_store_release_u32(&header.pointee.reader_sleeping, 0)
        heartbeat()
        return hasData
    }

    /// Decodes up to `maxRecords` committed records in order and hands their events to `sink`, which sees
    /// each record's event after the record is consumed. Stops at the first uncommitted record.
    /// Throws `RingError.corrupt` (with the position) on anything the protocol does not allow.
    @discardableResult
    /// `until`: stop there (a generation's start that `beginGeneration` returned; no record crosses it).
    public func drain(maxRecords: Int = .max, until limit: UInt64? = nil, _ body: (Event) throws -> Void) throws -> DrainResult {
        try withoutActuallyEscaping(body) { body in
            var sink = ClosureSink(body)
            return try drain(maxRecords: maxRecords, until: limit, into: &sink)
        }
    }

    /// `drain`, delivering each record straight to a sink's methods (the collector's fast path).
    @discardableResult
    public func drain<S: EventSink>(maxRecords: Int = .max, until limit: UInt64? = nil, into sink: inout S) throws -> DrainResult {
        var result = DrainResult()
        let writePos = writePosition
        var written = (writePos &- position) & Self.posMask
        guard written <= dataSize else {
            throw RingError.corrupt(pid: pid, position: position, problem: .cursorBeyondData(distance: written, dataSize: dataSize))
        }
        guard writePos & 7 == 0 else {
            throw RingError.corrupt(pid: pid, position: position, problem: .cursorUnaligned(position: writePos))
        }
        if let limit { written = min(written, (limit &- position) & Self.posMask) }
        let publishEvery = dataSize / 8
        var sincePublish: UInt64 = 0
        var ahead = Lookahead(position: position, left: written, stopped: !sink.hintsWorthFetching)
        defer { publish() }
        while written > 0 && result.records < maxRecords {
            let rec = recordPointer(position)
            let size = lr_load_acquire_u32(rec.assumingMemoryBound(to: UInt32.self))
            if size == 0 {
                result.uncommittedBytes = written
                break
            }
            hint(&ahead, sink)
            try decode(rec, size: size, written: written, into: &sink)
            position = (position &+ UInt64(size)) & Self.posMask
            written &-= UInt64(size)
            result.records &+= 1
            result.bytes &+= UInt64(size)
            sincePublish &+= UInt64(size)
            if sincePublish >= publishEvery {
                publish()
                sincePublish = 0
            }
        }
        return result
    }

    /// How far ahead of the record being decoded the reader asks the sink to fetch a block's slot: far
    /// enough for a cache miss to complete while the records between are applied.
    private static let lookaheadRecords = 8

    /// A cursor that runs ahead of the decoder over committed records, only to find the addresses of
    /// ALLOC and FREE records for `EventSink.lookupHint`. It trusts nothing: anything odd (an uncommitted
    /// or misshapen record) just stops it, and the decoder, which checks everything, finds it again.
    private struct Lookahead {
        var position: UInt64
        var left: UInt64
        /// Records it has passed that the decoder has not: at most `lookaheadRecords`.
        var lead = 0
        var stopped = false
    }

    @inline(__always) private func hint<S: EventSink>(_ a: inout Lookahead, _ sink: S) {
        if a.lead > 0 { a.lead -= 1 }  // the record decoded last time was one it had passed
        while !a.stopped && a.lead <= Self.lookaheadRecords {
            guard a.left >= 8 else {
                a.stopped = true
                return
            }
            let rec = recordPointer(a.position)
            let size = lr_load_acquire_u32(rec.assumingMemoryBound(to: UInt32.self))
            guard size != 0, size & 7 == 0, UInt64(size) <= a.left else {
                a.stopped = true
                return
            }
            let type = UInt32(rec.load(fromByteOffset: 4, as: UInt8.self))
            if type == LR_T_ALLOC.rawValue && size >= UInt32(MemoryLayout<lr_alloc>.size) {
                if let p = sink.lookupHint(address: rec.load(fromByteOffset: Int(LR_ALLOC_ADDR_OFFSET), as: UInt64.self), kind: .heap) {
                    lr_prefetch(p)
                }
            } else if type == LR_T_FREE.rawValue && size >= UInt32(MemoryLayout<lr_free>.size) {
                if let p = sink.lookupHint(address: rec.load(fromByteOffset: Int(LR_FREE_ADDR_OFFSET), as: UInt64.self), kind: .heap) {
                    lr_prefetch(p)
                }
            }
            a.position = (a.position &+ UInt64(size)) & Self.posMask
            a.left &-= UInt64(size)
            a.lead += 1
        }
    }

    /// Drains until nothing more can be read, for a process that has exited. Returns the bytes that stay
    /// unreadable because a writer died between reserving and committing them.
    public func drainToEnd(_ sink: (Event) throws -> Void) throws -> UInt64 {
        while true {
            let r = try drain(sink)
            if r.records == 0 { return r.uncommittedBytes }
        }
    }

    private func corrupt(_ problem: RingCorruption) -> RingError { .corrupt(pid: pid, position: position, problem: problem) }

    /// The allocator function of an ALLOC record's `fn`; a switch, not a table: a static array is a
    /// lazily initialized global whose buffer is retained and released on every look-up.
    @inline(__always) static func allocFunction(_ fn: UInt8) -> AllocFunction? {
        switch UInt32(fn) {
        case LR_FN_MALLOC.rawValue: return .malloc
        case LR_FN_CALLOC.rawValue: return .calloc
        case LR_FN_REALLOC.rawValue: return .realloc
        case LR_FN_REALLOCARRAY.rawValue: return .reallocarray
        case LR_FN_POSIX_MEMALIGN.rawValue: return .posixMemalign
        case LR_FN_ALIGNED_ALLOC.rawValue: return .alignedAlloc
        case LR_FN_MEMALIGN.rawValue: return .memalign
        case LR_FN_VALLOC.rawValue: return .valloc
        case LR_FN_PVALLOC.rawValue: return .pvalloc
        default: return nil
        }
    }

    /// The fixed part of each record type; 0 for types that do not exist.
    @inline(__always) private static func fixedSize(_ type: UInt8) -> UInt32 {
        switch UInt32(type) {
        case LR_T_ALLOC.rawValue: return UInt32(MemoryLayout<lr_alloc>.size)
        case LR_T_FREE.rawValue: return UInt32(MemoryLayout<lr_free>.size)
        case LR_T_MMAP.rawValue: return UInt32(MemoryLayout<lr_mmap>.size)
        case LR_T_MUNMAP.rawValue: return UInt32(MemoryLayout<lr_munmap>.size)
        case LR_T_UNDO.rawValue: return UInt32(MemoryLayout<lr_undo>.size)
        case LR_T_STACK.rawValue: return UInt32(MemoryLayout<lr_stack>.size)
        case LR_T_MODULE.rawValue: return UInt32(MemoryLayout<lr_module>.size)
        case LR_T_UNMODULE.rawValue: return UInt32(MemoryLayout<lr_unmodule>.size)
        default: return 0
        }
    }

    /// One record of the live table's module log, which has the ring's format, decoded and checked the same way.
    func decodeRecord(_ rec: UnsafeMutableRawPointer, size: UInt32, written: UInt64) throws(RingError) -> Event? {
        var out: Event?
        var sink = ClosureSink { out = $0 }
        do {
            try decode(rec, size: size, written: written, into: &sink)
        } catch let e as RingError {
            throw e
        } catch {
            throw .corrupt(pid: pid, position: 0, problem: .unknownType(0))  // the sink above never throws
        }
        return out
    }

    /// One committed record, copied out of shared memory field by field and checked before use.
    @inline(__always)
    private func decode<S: EventSink>(_ rec: UnsafeMutableRawPointer, size: UInt32, written: UInt64, into sink: inout S) throws {
        guard size & 7 == 0 else { throw corrupt(.sizeNotMultipleOf8(size: size)) }
        guard size <= LR_MAX_RECORD else { throw corrupt(.sizeTooLarge(size: size)) }
        guard UInt64(size) <= written else { throw corrupt(.sizeBeyondWritten(size: size, written: written)) }
        let type = rec.load(fromByteOffset: 4, as: UInt8.self)
        let fn = rec.load(fromByteOffset: 5, as: UInt8.self)
        let flags = UInt32(rec.load(fromByteOffset: 6, as: UInt16.self))
        let minimum = Self.fixedSize(type)
        guard minimum > 0 else { throw corrupt(.unknownType(type)) }
        guard size >= minimum else { throw corrupt(.sizeTooSmall(size: size, type: type, minimum: minimum)) }
        let pending = flags & LR_F_PENDING != 0

        switch UInt32(type) {
        case LR_T_ALLOC.rawValue:
            let a = rec.load(as: lr_alloc.self)
            guard let function = Self.allocFunction(fn) else {
                throw corrupt(.unknownFunction(type: type, fn: fn))
            }
            try sink.alloc(Allocation(
                address: a.addr, size: a.size, kind: .heap, function: function,
                stack: a.stack_id == LR_NO_STACK ? .none : .local(UInt64(a.stack_id)), time: a.time_ns, tid: a.tid,
                replaces: a.old_addr == 0 ? nil : a.old_addr))
        case LR_T_MMAP.rawValue:
            let m = rec.load(as: lr_mmap.self)
            let function: AllocFunction
            let backing: Backing?
            switch UInt32(fn) {
            case LR_FN_MMAP.rawValue:
                function = .mmap
                backing = flags & LR_F_FILE != 0 ? .file : .anonymous
            case LR_FN_MREMAP.rawValue:
                function = .mremap
                backing = nil  // the shim cannot see it: the region keeps the backing of the one it replaces
            default:
                throw corrupt(.unknownFunction(type: type, fn: fn))
            }
            try sink.alloc(Allocation(
                address: m.addr, size: m.len, kind: .mmap, function: function,
                stack: m.stack_id == LR_NO_STACK ? .none : .local(UInt64(m.stack_id)), time: m.time_ns, tid: m.tid,
                replaces: m.old_addr == 0 ? nil : m.old_addr, backing: backing))
        case LR_T_FREE.rawValue:
            try sink.free(address: rec.load(as: lr_free.self).addr, kind: .heap, pending: pending)
        case LR_T_MUNMAP.rawValue:
            let u = rec.load(as: lr_munmap.self)
            try sink.unmap(address: u.addr, length: u.len, pending: pending)
        case LR_T_UNDO.rawValue:
            let address = rec.load(as: lr_undo.self).addr
            switch UInt32(fn) {
            case LR_FN_REALLOC.rawValue, LR_FN_REALLOCARRAY.rawValue: try sink.undo(address: address, kind: .heap)
            case LR_FN_MREMAP.rawValue: try sink.undo(address: address, kind: .mmap)
            default: throw corrupt(.unknownFunction(type: type, fn: fn))
            }
        case LR_T_STACK.rawValue:
            let s = rec.load(as: lr_stack.self)
            guard s.stack_id != LR_NO_STACK else { throw corrupt(.zeroStackID) }
            guard s.depth <= maxDepth else { throw corrupt(.depthTooLarge(depth: s.depth, maxDepth: maxDepth)) }
            guard UInt64(size) == UInt64(minimum) + 8 * UInt64(s.depth) else {
                throw corrupt(.stackSizeMismatch(size: size, depth: s.depth))
            }
            let depth = Int(s.depth)
            let source = UnsafeRawPointer(rec + Int(minimum))
            let frames = [UInt64](unsafeUninitializedCapacity: depth) { buffer, count in
                if let dst = buffer.baseAddress { memcpy(dst, source, depth * 8) }
                count = depth
            }
            try sink.event(.stack(StackDefinition(id: UInt64(s.stack_id), frames: frames, truncated: flags & LR_F_TRUNCATED != 0)))
        case LR_T_MODULE.rawValue:
            let m = rec.load(as: lr_module.self)
            guard UInt32(m.path_len) <= LR_MAX_PATH else { throw corrupt(.pathTooLong(length: m.path_len)) }
            guard UInt32(m.build_id_len) <= LR_MAX_BUILD_ID else { throw corrupt(.buildIDTooLong(length: m.build_id_len)) }
            guard size == lr_round8(minimum + UInt32(m.path_len)) else {
                throw corrupt(.moduleSizeMismatch(size: size, pathLength: m.path_len))
            }
            let path = String(decoding: UnsafeRawBufferPointer(start: rec + Int(minimum), count: Int(m.path_len)), as: UTF8.self)
            let buildID = withUnsafeBytes(of: m.build_id) { Array($0.prefix(Int(m.build_id_len))) }
            // The source stamps the time and opens the file: it knows how to reach what the process really maps.
            try sink.event(.module(ModuleInfo(id: UInt64(m.module_id), path: path, buildID: buildID, bias: m.bias, lo: m.lo, hi: m.hi)))
        case LR_T_UNMODULE.rawValue:
            try sink.event(.moduleUnload(id: UInt64(rec.load(as: lr_unmodule.self).module_id), time: 0))
        default:
            throw corrupt(.unknownType(type))
        }
    }
}
