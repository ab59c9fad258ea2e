import Foundation
import SessionStore

/// One interval's worth of changes, cut from the tracker: the session batch minus the stacks, which
/// still need symbolizing (done off the event path, on the writer's thread).
public struct PendingBatch: Sendable {
    public var batch: SessionBatch
    public var newStacks: [NewStack]
}

/// The collector's state: the live table, the stack table, the module map and the per-stack totals.
/// Every source (shim ring, uprobes, kernel) feeds it the same `Event`s, and it alone decides what is
/// outstanding. Not thread safe: one thread applies events and cuts batches.
public final class Tracker {
    private let heap = AddressTable()
    /// Kernel kinds each have their own address space (slab objects, page frame numbers, percpu).
    private let slab = AddressTable(capacity: 1 << 10)
    private let pages = AddressTable(capacity: 1 << 10)
    private let percpu = AddressTable(capacity: 1 << 10)
    private var regions = MappedRegions()
    private var stacks = StackTable()
    private var modules = ModuleMap()
    private var totals = StackTotals()

    /// realloc/mremap frees whose outcome is not known yet, by address.
    private var pendingBlocks: [UInt64: (BlockKind, Block)] = [:]
    private var pendingPieces: [UInt64: [Region]] = [:]

    /// Heap/kernel blocks allocated since the last cut, to write if they are still live then.
    private var newBlocks: [(BlockKind, UInt64)] = []
    private var deletedBlocks: [LiveKey] = []

    private var comms: [String] = [""]
    private var commIndex: [TaskName: UInt32] = [:]

    /// Counters this tracker keeps (events, unmatched and missed frees, unknown stacks).
    public private(set) var counters: [CounterName: UInt64] = [:]
    private var events: UInt64 = 0

    private let pageMask: UInt64 = UInt64(sysconf(Int32(_SC_PAGESIZE))) - 1

    public init() {}

    /// The table of a kind's address space. Callers use it directly (`table(k).insert`): returning the
    /// reference from a switch over `let` properties lets the optimizer skip retain/release per event.
    @inline(__always) private func table(_ kind: BlockKind) -> AddressTable {
        switch kind {
        case .heap, .mmap: return heap
        case .kernelSlab: return slab
        case .kernelPage: return pages
        case .kernelPercpu: return percpu
        }
    }

    private func bump(_ c: CounterName, by n: UInt64 = 1) { counters[c, default: 0] &+= n }

    /// Interns a kernel stack (kernel sources resolve their stack ids to frames first).
    public func internKernelStack(_ frames: [UInt64], truncated: Bool = false) -> SessionStackID {
        stacks.internKernel(frames, truncated: truncated)
    }

    private func resolve(_ ref: StackRef) -> SessionStackID {
        switch ref {
        case .none: return StackTable.empty
        case .session(let s): return s
        case .shim(let id):
            if let s = stacks.lookupShim(id) { return s }
            bump(.unknownStacks)
            return StackTable.empty
        }
    }

    private func intern(comm: TaskName?) -> UInt32 {
        guard let comm else { return 0 }
        if let i = commIndex[comm] { return i }
        let i = UInt32(comms.count)
        comms.append(comm.description)
        commIndex[comm] = i
        return i
    }

    /// Applies one event.
    public func apply(_ event: Event) {
        events &+= 1
        switch event {
        case .alloc(let a):
            if a.kind == .mmap { map(a) } else { allocate(a) }
        case .free(let address, let kind, let pending):
            free(address, kind: kind, pending: pending)
        case .unmap(let address, let length, let pending):
            unmap(address, length, pending: pending)
        case .undo(let address, let kind):
            undo(address, kind: kind)
        case .stack(let id, let frames, let truncated):
            stacks.defineShim(id, frames: frames, truncated: truncated, modules: modules)
        case .module(let info):
            modules.load(info, at: monotonicNow())
        case .moduleUnload(let id):
            modules.unload(shimID: id, at: monotonicNow())
        }
    }

    private func allocate(_ a: Allocation) {
        if let old = a.replaces { pendingBlocks.removeValue(forKey: old) }
        let block = Block(
            size: a.size, time: a.time, stack: resolve(a.stack), tid: a.tid, pid: a.pid ?? 0, comm: intern(comm: a.comm),
            function: a.function, persisted: false)
        let t = table(a.kind)
        if let replaced = t.insert(a.address, block) {
            // Still live at a new allocation of the same address: its free was never seen.
            bump(.missedFrees)
            totals.remove(stack: replaced.stack, kind: a.kind, bytes: replaced.size, blocks: 1)
            if replaced.persisted { deletedBlocks.append(LiveKey(kind: a.kind, address: a.address)) }
        }
        totals.add(stack: block.stack, kind: a.kind, bytes: a.size, blocks: 1, newAllocation: true)
        newBlocks.append((a.kind, a.address))
    }

    private func free(_ address: UInt64, kind: BlockKind, pending: Bool) {
        guard let b = table(kind).remove(address) else {
            bump(.unmatchedFrees)
            return
        }
        totals.remove(stack: b.stack, kind: kind, bytes: b.size, blocks: 1)
        if b.persisted { deletedBlocks.append(LiveKey(kind: kind, address: address)) }
        if pending {
            var stashed = b
            stashed.persisted = false
            pendingBlocks[address] = (kind, stashed)
        }
    }

    private func undo(_ address: UInt64, kind: BlockKind) {
        if kind == .mmap {
            guard let pieces = pendingPieces.removeValue(forKey: address) else { return }
            for p in pieces {
                _ = removeRange(p.start, p.end)
                regions.insert(p)
                totals.add(stack: p.stack, kind: .mmap, bytes: p.size, blocks: 1, newAllocation: false)
            }
            return
        }
        guard let (k, b) = pendingBlocks.removeValue(forKey: address) else { return }
        if let replaced = table(k).insert(address, b) {
            bump(.missedFrees)
            totals.remove(stack: replaced.stack, kind: k, bytes: replaced.size, blocks: 1)
            if replaced.persisted { deletedBlocks.append(LiveKey(kind: k, address: address)) }
        }
        totals.add(stack: b.stack, kind: k, bytes: b.size, blocks: 1, newAllocation: false)
        newBlocks.append((k, address))
    }

    private func pageRange(_ address: UInt64, _ length: UInt64) -> (UInt64, UInt64) {
        let lo = address & ~pageMask
        let (end, overflow) = address.addingReportingOverflow(length)
        let hi = overflow ? UInt64.max & ~pageMask : (end &+ pageMask) & ~pageMask
        return (lo, hi)
    }

    /// Removes a page range from the regions and takes it off the totals.
    private func removeRange(_ lo: UInt64, _ hi: UInt64) -> [RemovedPiece] {
        let removed = regions.remove(lo, hi)
        for r in removed {
            totals.remove(stack: r.piece.stack, kind: .mmap, bytes: r.piece.size, blocks: 0)
            totals.adjustBlocks(stack: r.piece.stack, kind: .mmap, by: r.blocksDelta)
        }
        return removed
    }

    private func map(_ a: Allocation) {
        var backing = a.backing ?? .anonymous
        // mremap's result keeps the backing of the region it moved or resized.
        if let old = a.replaces, let pieces = pendingPieces.removeValue(forKey: old), let first = pieces.first { backing = first.backing }
        let (lo, hi) = pageRange(a.address, a.size)
        guard lo < hi else { return }
        // A new mapping replaces whatever it overlaps (MAP_FIXED, or an unmap the collector missed).
        _ = removeRange(lo, hi)
        let r = Region(
            start: lo, end: hi, stack: resolve(a.stack), time: a.time, tid: a.tid, function: a.function, backing: backing)
        regions.insert(r)
        totals.add(stack: r.stack, kind: .mmap, bytes: r.size, blocks: 1, newAllocation: true)
    }

    private func unmap(_ address: UInt64, _ length: UInt64, pending: Bool) {
        let (lo, hi) = pageRange(address, length)
        let removed = removeRange(lo, hi)
        if removed.isEmpty { bump(.unmatchedFrees) }
        if pending {
            pendingPieces[address] = removed.map {
                var p = $0.piece
                p.persisted = false
                return p
            }
        }
    }

    /// Cuts everything changed since the last cut into a batch; `time` stamps its snapshot rows.
    public func cut(at time: UInt64) -> PendingBatch {
        var b = SessionBatch()
        b.timeNs = time
        (b.modules, b.moduleUnloads) = modules.takeChanges()
        b.liveDeletes = deletedBlocks
        deletedBlocks.removeAll(keepingCapacity: true)
        for (kind, address) in newBlocks {
            let t = table(kind)
            guard let blk = t.find(address), !blk.persisted else { continue }
            t.markPersisted(address)
            b.liveUpserts.append(row(kind, address, blk))
        }
        newBlocks.removeAll(keepingCapacity: true)
        let (deletedStarts, written) = regions.takeChanges()
        b.liveDeletes += deletedStarts.map { LiveKey(kind: .mmap, address: $0) }
        b.liveUpserts += written.map {
            LiveRow(kind: .mmap, address: $0.start, size: $0.size, stackID: $0.stack, timeNs: $0.time, function: $0.function, tid: $0.tid, backing: $0.backing)
        }
        (b.totals, b.snapshot) = totals.takeChanges(at: time)
        counters[.events] = events
        b.counters = counters
        return PendingBatch(batch: b, newStacks: stacks.takeNew())
    }

    private func row(_ kind: BlockKind, _ address: UInt64, _ b: Block) -> LiveRow {
        LiveRow(
            kind: kind, address: address, size: b.size, stackID: b.stack, timeNs: b.time, function: b.function, tid: b.tid,
            pid: b.pid == 0 && b.comm == 0 ? nil : b.pid, comm: b.comm == 0 ? nil : comms[Int(b.comm)])
    }

    /// Outstanding bytes and blocks over every kind, as the live table holds them now.
    public var outstanding: (bytes: UInt64, blocks: UInt64) { totals.outstanding }

    /// Live blocks by kind, for tests and summaries.
    public func liveCount(_ kind: BlockKind) -> Int {
        kind == .mmap ? regions.count : table(kind).count
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock every source stamps events with.
public func monotonicNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// CLOCK_REALTIME now, in nanoseconds.
public func realtimeNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
