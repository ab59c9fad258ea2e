import Glibc
import RingFormat
import Vocabulary

/// A read of the shim's live table a slice at a time (`LiveTable.scan`), so that a resync at ten million
/// blocks does not stop the ring's drain for seconds, and no copy of the whole table is ever built.
public struct LiveScan {
    fileprivate var segment: UInt32 = 0
    fileprivate var slot = 0
    fileprivate let segments: UInt32
    /// Stack ids this scan has looked at, and those of them the table could not define (bitmaps: ids are
    /// below LR_MAX_STACKS, and a Set would be hashed once per block).
    fileprivate var seen: [UInt64]
    fileprivate var undefined: [UInt64]
    /// Module and module-unload events of the log, from where the previous read of it stopped; the
    /// blocks name them, so they are taken before the first slice.
    private var moduleEvents: [Event]
    /// Allocations the shim could not put in its table (every segment full): the scan lacks them.
    public let tableFull: UInt64
    public fileprivate(set) var blocks = 0
    public fileprivate(set) var bytes: UInt64 = 0
    /// Slots that changed under every read of them (an app allocating at that address without pause),
    /// and blocks naming a stack the table does not define (charged to no stack).
    public fileprivate(set) var unreadableSlots = 0
    public fileprivate(set) var unknownStacks = 0

    /// Every slot has been read.
    public var done: Bool { segment >= segments }

    /// The module events not taken yet.
    public mutating func takeModuleEvents() -> [Event] {
        defer { moduleEvents = [] }
        return moduleEvents
    }

    fileprivate init(segments: UInt32, moduleEvents: [Event], tableFull: UInt64) {
        self.segments = segments
        self.moduleEvents = moduleEvents
        self.tableFull = tableFull
        let words = Int(lr_max_stacks() + 63) / 64
        seen = [UInt64](repeating: 0, count: words)
        undefined = seen
    }
}

/// The shim's live table of one process (leakring.h, "The live table"), found through /proc next to its
/// ring, checked, and mapped read-only. The process is untrusted: every offset, count and id read from
/// it is bounds-checked, and a slot is used only when a consistent copy of it could be taken.
public final class LiveTable: @unchecked Sendable {
    public let pid: Int32
    private let base: UnsafeRawPointer
    private let fd: Int32
    private let maxDepth: UInt32
    private var header: UnsafeMutablePointer<lr_live_header> { UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: lr_live_header.self)) }
    /// Bytes of the module log already turned into events.
    private var modlogRead: UInt64 = 0

    public static let linkName = "/memfd:\(LR_LIVE_MEMFD_NAME) (deleted)"
    private static let fileSize = lr_live_file_size()

    /// Validates and maps an open live-table descriptor that must belong to `ring`. Takes ownership of `fd`.
    init(fd: Int32, ring: RingMapping) throws(RingError) {
        var ok = false
        defer { if !ok { close(fd) } }
        let pid = ring.pid
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .system(pid: pid, call: "fstat", errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .liveTableCorrupt(pid: pid, problem: "not a regular memfd") }
        let seals = lr_get_seals(fd)
        guard seals >= 0, seals & Int32(LR_SEALS_REQUIRED) == Int32(LR_SEALS_REQUIRED) else {
            throw .liveTableCorrupt(pid: pid, problem: "not sealed against resizing")
        }
        guard UInt64(max(st.st_size, 0)) == Self.fileSize else {
            throw .liveTableCorrupt(pid: pid, problem: "\(st.st_size) bytes, expected \(Self.fileSize)")
        }
        var h = lr_live_header()
        let n = MemoryLayout<lr_live_header>.size
        guard pread(fd, &h, n, 0) == n else { throw .system(pid: pid, call: "pread", errno: errno) }
        guard h.magic == LR_LIVE_MAGIC, h.version == LR_LIVE_VERSION, h.header_size == LR_LIVE_HEADER_SIZE,
            h.file_size == Self.fileSize
        else { throw .liveTableCorrupt(pid: pid, problem: "bad magic, version or sizes: use matching shim and collector") }
        guard h.ring_start_monotonic_ns == ring.startMonotonicNs, h.pid == ring.ringPID else {
            throw .liveTableCorrupt(pid: pid, problem: "it belongs to another ring")
        }
        guard let p = mmap(nil, Int(Self.fileSize), PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0), p != MAP_FAILED else {
            throw .system(pid: pid, call: "mmap", errno: errno)
        }
        self.pid = pid
        self.fd = fd
        base = UnsafeRawPointer(p)
        maxDepth = min(ring.maxDepth, LR_MAX_DEPTH)
        ok = true
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), Int(Self.fileSize))
        close(fd)
    }

    /// The live table next to `ring` in process `ring.pid`, or nil when it has none (a shim without one,
    /// or one whose table could not be created). Throws when one is there but unusable.
    public static func open(for ring: RingMapping) throws(RingError) -> LiveTable? {
        let pid = ring.pid
        var paths = (try? RingMapping.links(in: "/proc/\(pid)/fd", pid: pid, target: linkName)) ?? []
        if paths.isEmpty, let mapped = try? RingMapping.links(in: "/proc/\(pid)/map_files", pid: pid, target: linkName) {
            paths = Array(mapped.prefix(1))
        }
        var firstError: RingError?
        for path in paths {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { continue }
            do {
                return try LiveTable(fd: fd, ring: ring)
            } catch {
                firstError = firstError ?? error  // an inherited parent's table belongs to another ring: look on
            }
        }
        if let firstError, case .system = firstError { throw firstError }
        return nil
    }

    /// Starts a read of what is live now: the module log's new records first. The table is untrusted:
    /// the segment count is checked here, every slot as it is read. `decoder` decodes the log's records
    /// (the ring's own format).
    public func beginScan(decoder: RingReader) throws(RingError) -> LiveScan {
        let modules = try readModuleLog(decoder)
        let tableFull = lr_load_acquire_u64(&header.pointee.table_full)
        let segments = lr_load_acquire_u32(&header.pointee.segments)
        guard segments >= 1, segments <= LR_LIVE_MAX_SEGMENTS else {
            throw .liveTableCorrupt(pid: pid, problem: "\(segments) segments, at most \(LR_LIVE_MAX_SEGMENTS)")
        }
        // Segments added later hold only blocks allocated after this point, whose records follow it.
        return LiveScan(segments: segments, moduleEvents: modules, tableFull: tableFull)
    }

    /// Reads up to `budget` more slots and hands each live block to `block`. The first block naming a stack
    /// the consumer does not `know` brings that stack's definition to `define` first; a stack the table does
    /// not define leaves its blocks on no stack.
    public func scan(
        _ scan: inout LiveScan, budget: Int, knows: (UInt32) -> Bool, define: (StackDefinition) -> Void, block: (SnapshotBlock) -> Void
    ) {
        var left = budget
        while left > 0 && !scan.done {
            let k = scan.segment
            let count = Int(lr_live_segment_slots(k))
            let slots = base + Int(lr_live_segment_offset(k))
            let end = min(count, scan.slot + left)
            for j in scan.slot..<end {
                guard let s = copy(UnsafeMutableRawPointer(mutating: slots + j * MemoryLayout<lr_live_slot>.size)) else { continue }
                if s.addr == UInt64(LR_LIVE_EMPTY) || s.addr == UInt64(LR_LIVE_TOMB) { continue }
                guard s.addr >= UInt64(LR_LIVE_FIRST_ADDR), let function = RingReader.allocFunction(s.fn), s.stack_id < lr_max_stacks() else {
                    scan.unreadableSlots += 1
                    continue
                }
                var id = s.stack_id
                if id != LR_NO_STACK {
                    let w = Int(id >> 6), bit: UInt64 = 1 << UInt64(id & 63)
                    if scan.seen[w] & bit == 0 {
                        scan.seen[w] |= bit
                        if !knows(id) {
                            if let d = stack(id) { define(d) } else { scan.undefined[w] |= bit }
                        }
                    }
                    if scan.undefined[w] & bit != 0 {
                        id = LR_NO_STACK
                        scan.unknownStacks += 1
                    }
                }
                block(
                    SnapshotBlock(
                        address: s.addr, size: s.size, kind: .heap, function: function,
                        stackID: id == LR_NO_STACK ? SnapshotBlock.noStack : id, time: s.time_ns))
                scan.blocks += 1
                scan.bytes &+= s.size
            }
            left -= end - scan.slot
            if end == count {
                scan.segment += 1
                scan.slot = 0
            } else {
                scan.slot = end
            }
        }
    }

    /// A consistent copy of one slot (leakring.h's reader steps), or nil when it kept changing or is busy.
    private func copy(_ slot: UnsafeMutableRawPointer) -> lr_live_slot? {
        let addrWord = slot.assumingMemoryBound(to: UInt64.self)
        let seqWord = (slot + MemoryLayout<lr_live_slot>.offset(of: \lr_live_slot.seq)!).assumingMemoryBound(to: UInt16.self)
        for _ in 0..<8 {
            let a = lr_load_acquire_u64(addrWord)
            if a == UInt64(LR_LIVE_EMPTY) || a == UInt64(LR_LIVE_TOMB) {
                var s = lr_live_slot()
                s.addr = a
                return s
            }
            if a == UInt64(LR_LIVE_BUSY) { continue }
            let q = lr_load_acquire_u16(seqWord)
            let s = slot.load(as: lr_live_slot.self)
            lr_fence_acquire()
            if q & 1 == 0, lr_load_acquire_u16(seqWord) == q, lr_load_acquire_u64(addrWord) == a {
                var out = s
                out.addr = a
                return out
            }
        }
        return nil
    }

    /// The interned stack `id`, if the index names a complete node for it inside the pool.
    private func stack(_ id: UInt32) -> StackDefinition? {
        let index = UnsafeMutableRawPointer(mutating: base + Int(lr_live_stackidx_offset()) + 4 * Int(id)).assumingMemoryBound(to: UInt32.self)
        let word = UInt64(lr_load_acquire_u32(index))
        let poolWords = lr_live_pool_size() / 8
        let headerWords = UInt64(MemoryLayout<lr_stack_node>.size / 8)
        guard word >= 1, word + headerWords <= poolWords else { return nil }
        let node = base + Int(lr_live_pool_offset()) + Int(word * 8)
        let n = node.load(as: lr_stack_node.self)
        guard n.id == id, UInt32(n.depth) <= maxDepth, word + headerWords + UInt64(n.depth) <= poolWords else { return nil }
        let depth = Int(n.depth)
        let frames = [UInt64](unsafeUninitializedCapacity: depth) { buffer, count in
            if let dst = buffer.baseAddress { memcpy(dst, node + MemoryLayout<lr_stack_node>.size, depth * 8) }
            count = depth
        }
        return StackDefinition(id: UInt64(id), frames: frames, truncated: n.truncated != 0)
    }

    /// The module log's records from where the last read stopped, decoded by the ring's own decoder.
    private func readModuleLog(_ decoder: RingReader) throws(RingError) -> [Event] {
        let used = lr_load_acquire_u64(&header.pointee.modlog_used)
        guard used <= lr_live_modlog_size(), used >= modlogRead else {
            throw .liveTableCorrupt(pid: pid, problem: "module log length \(used)")
        }
        // Records are copied out first: the decoder reads from writable memory, and ours is a read-only map.
        let length = Int(used - modlogRead)
        guard length > 0 else { return [] }
        var events: [Event] = []
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 8)
        defer { buffer.deallocate() }
        memcpy(buffer, base + Int(lr_live_modlog_offset()) + Int(modlogRead), length)
        var pos = 0
        while pos < length {
            let left = length - pos
            guard left >= MemoryLayout<lr_record>.size else { throw .liveTableCorrupt(pid: pid, problem: "module log ends inside a record") }
            let size = buffer.load(fromByteOffset: pos, as: UInt32.self)
            guard size >= UInt32(MemoryLayout<lr_record>.size) else { throw .liveTableCorrupt(pid: pid, problem: "module log record of size \(size)") }
            let event: Event?
            do {
                event = try decoder.decodeRecord(buffer + pos, size: size, written: UInt64(left))
            } catch {
                guard case .corrupt(_, _, let problem) = error else { throw error }
                throw .liveTableCorrupt(pid: pid, problem: "module log at byte \(UInt64(pos) + modlogRead): \(problem)")
            }
            switch event {
            case .module(let m)?: events.append(.module(m))
            case .moduleUnload(let id, let time)?: events.append(.moduleUnload(id: id, time: time))
            default: throw .liveTableCorrupt(pid: pid, problem: "module log holds a record that is not a module's")
            }
            pos += Int(size)
        }
        modlogRead = used
        return events
    }
}
