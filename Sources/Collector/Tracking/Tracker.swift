import Glibc
import SessionStore
import Vocabulary

/// One interval's worth of changes, cut from the tracker: the session batch minus the stacks, which
/// still need symbolizing (done off the event path, on the runner's symbolizer thread).
public struct PendingBatch: Sendable {
    public var batch: SessionBatch
    /// Stacks defined since the last cut that `takeNewStacks` did not hand out already.
    public var newStacks: [NewStack]
    /// Modules loaded with their opened files, for the symbolizer: those `takeNewStacks` did not hand out.
    public var newModules: [SessionModule]
}

/// A cut under way (see `Tracker.beginCut`).
public struct CutInProgress {
    /// The tables to scan: space, kind, next shard.
    fileprivate var tables: [(SpaceState, BlockKind, Int)] = []
    fileprivate var table = 0
    fileprivate var puts: [LiveTableKey: [LiveBlock]] = [:]
    fileprivate var putCount = 0
    /// Set when `maxPuts` stopped the scan: some new blocks wait for the next cut.
    fileprivate var full = false
    /// New blocks were left for the next cut (`maxPuts` stopped the scan).
    public var leftBlocks: Bool { full }
    /// Spaces already closed when the cut began: only their scan saw every block they will ever hold. One
    /// closed while the cut ran (an exit, with the final resync just before) may have new blocks in shards
    /// the scan had passed, so its live memory must wait for the next cut.
    fileprivate var closedAtStart: Set<SpaceID> = []
    /// A cut checkpoints about this many new blocks at most (whole shards); the rest wait for the next
    /// one, so a batch (and the writer's work on it) stays bounded however long the writer was busy.
    static let maxPuts = 1 << 19
}

/// The collector's state: per address space the live blocks, regions, modules and stack translation;
/// session-wide the stack table and the per-stack totals with their peaks. Every source feeds it the
/// same `Event`s and it alone decides what is outstanding. Not thread safe: one thread applies events
/// and cuts batches.
public final class Tracker {
    private var spaces: [SpaceState] = []
    /// The same spaces, unretained (`spaces` owns them): the event path reaches its space without an
    /// atomic retain and release per event.
    private var spaceRefs: [Unmanaged<SpaceState>] = []
    private var stacks = StackTable()
    private var totals = StackTotals()
    private var nextModuleID: Int64 = 1
    private var newModules: [SessionModule] = []
    /// Modules the symbolizer has not been given yet (by `takeNewStacks` or a cut).
    private var modulesForSymbols: [SessionModule] = []
    private var unloads: [(id: Int64, timeNs: UInt64)] = []
    private var records: [any SessionRows] = []
    private var dirtyStacks: [(Int, SessionStackID)] = []

    /// Counters this tracker keeps (events, unmatched and missed frees, unknown stacks).
    public private(set) var counters: [CounterName: UInt64] = [:]
    private var events: UInt64 = 0
    private let pageMask: UInt64 = UInt64(sysconf(Int32(_SC_PAGESIZE))) - 1

    /// Ticks (2^20 ns) of block times are counted from here: 2^31 ticks (about 26 days) before the
    /// tracker started, so blocks a snapshot reports from long before the attach still have their age.
    private let tickBase: UInt64

    /// `maxDepth`: frames kept per stack, whatever the source captured.
    public init(maxDepth: Int = Int.max, now: UInt64 = monotonicNow()) {
        let t = now >> 20
        tickBase = t > 1 << 31 ? t - (1 << 31) : 0
        stacks.maxDepth = maxDepth
    }

    deinit { totals.deallocate() }

    // MARK: spaces

    /// Starts tracking an address space (a process image or the kernel) and returns its id.
    public func openSpace(_ info: SpaceInfo) -> SpaceID {
        let id = SpaceID(spaces.count + 1)
        let s = SpaceState(id: id, info: info)
        spaces.append(s)
        spaceRefs.append(Unmanaged.passUnretained(s))
        return id
    }

    /// Moves every open space's clock to at least `time`, a moment every event still to come follows
    /// (the start of a poll that found nothing). Frees carry no time, so without this a block freed
    /// after a quiet spell (no allocation between) would be dated at the last allocation and its
    /// lifetime read as about zero.
    public func observe(time: UInt64) {
        for s in spaces where !s.closed && time > s.clock { s.clock = time }
    }

    /// Ends a space: its live blocks stay outstanding in the session (they are what it left behind).
    public func closeSpace(_ id: SpaceID, at time: UInt64, end: SpaceEnd) {
        guard let s = space(id), !s.closed else { return }
        s.closed = true
        s.row.endNs = time
        s.row.end = end
        s.rowDirty = true
    }

    /// Replaces a space's description (its command line became known, say).
    public func updateSpace(_ id: SpaceID, _ body: (inout SpaceInfo) -> Void) {
        guard let s = space(id) else { return }
        body(&s.row.info)
        s.rowDirty = true
    }

    @inline(__always) private func space(_ id: SpaceID) -> SpaceState? {
        let i = Int(id) - 1
        return i >= 0 && i < spaces.count ? spaces[i] : nil
    }

    private func bump(_ c: CounterName, by n: UInt64 = 1) { counters[c, default: 0] &+= n }

    @inline(__always) private func tick(_ time: UInt64) -> UInt32 {
        let t = time >> 20
        return t <= tickBase ? 0 : UInt32(truncatingIfNeeded: min(t - tickBase, UInt64(UInt32.max)))
    }

    @inline(__always) private func time(ofTick tick: UInt32) -> UInt64 { (UInt64(tick) + tickBase) << 20 }

    // MARK: events

    /// Applies one event of space `id`. Events of a space that was never opened, or was closed, are
    /// counted and ignored.
    public func apply(_ event: Event, in id: SpaceID) {
        events &+= 1
        let i = Int(id) - 1
        guard i >= 0 && i < spaceRefs.count else { return ignore(event) }
        spaceRefs[i]._withUnsafeGuaranteedRef { s in
            if s.closed { ignore(event) } else { apply(event, s) }
        }
    }

    /// The direct entry to one space, for sources that decode millions of events: each method is what
    /// `apply` does for that kind of event, without building an `Event` first.
    public struct SpaceSink: EventSink {
        // Unmanaged and used through `_withUnsafeGuaranteedRef`: a reference loaded per event for a call
        // costs an atomic retain and release, a tenth of the event path. The tracker owns both.
        fileprivate let tracker: Unmanaged<Tracker>
        fileprivate let space: Unmanaged<SpaceState>

        @inline(__always) private func with(_ body: (Tracker, SpaceState) -> Void) {
            tracker._withUnsafeGuaranteedRef { t in space._withUnsafeGuaranteedRef { s in body(t, s) } }
        }

        public mutating func alloc(_ a: Allocation) {
            with { t, s in
                t.events &+= 1
                if s.closed { return t.ignore(.alloc(a)) }
                if a.time > s.clock { s.clock = a.time }
                if a.kind == .mmap { t.map(a, s) } else { t.allocate(a, s) }
            }
        }

        public mutating func free(address: UInt64, kind: BlockKind, pending: Bool) {
            with { t, s in
                t.events &+= 1
                if s.closed { return t.ignore(.free(address: address, kind: kind, pending: pending)) }
                t.free(address, kind: kind, pending: pending, s)
            }
        }

        public mutating func unmap(address: UInt64, length: UInt64, pending: Bool) {
            with { t, s in t.apply(.unmap(address: address, length: length, pending: pending), in: s.id) }
        }

        public mutating func undo(address: UInt64, kind: BlockKind) { with { t, s in t.apply(.undo(address: address, kind: kind), in: s.id) } }

        public mutating func event(_ e: Event) { with { t, s in t.apply(e, in: s.id) } }

        public func lookupHint(address: UInt64, kind: BlockKind) -> UnsafeRawPointer? {
            kind == .mmap ? nil : space._withUnsafeGuaranteedRef { $0.table(kind).slotHint(address) }
        }

        /// Below this many live heap blocks the table (about 48 bytes per block) stays in the cache, and
        /// mallocbench's window of 128 spent 2 % of the collector's samples on prefetching hits.
        public static let hintedBlocks = 1 << 15

        public var hintsWorthFetching: Bool { space._withUnsafeGuaranteedRef { $0.table(.heap).count >= Self.hintedBlocks } }
    }

    /// The direct entry to space `id` (which must be open; the sink must not outlive the tracker).
    public func sink(for id: SpaceID) -> SpaceSink? {
        guard let s = space(id) else { return nil }
        return SpaceSink(tracker: Unmanaged.passUnretained(self), space: Unmanaged.passUnretained(s))
    }

    private func ignore(_ event: Event) {
        if case .record(let r) = event, let rows = r.rows as? any SessionRows { records.append(rows) } else { bump(.eventsWithoutSpace) }
    }

    private func apply(_ event: Event, _ s: SpaceState) {
        switch event {
        case .alloc(let a):
            if a.time > s.clock { s.clock = a.time }
            if a.kind == .mmap { map(a, s) } else { allocate(a, s) }
        case .free(let address, let kind, let pending):
            free(address, kind: kind, pending: pending, s)
        case .unmap(let address, let length, let pending):
            unmap(address, length, pending: pending, s)
        case .undo(let address, let kind):
            undo(address, kind: kind, s)
        case .stack(let d):
            guard s.stackIDs.lookup(d.id) == nil else { return }
            let origin: StackOrigin = s.row.info.kind == .kernel ? .kernel : .user
            let sid = stacks.define(
                d, space: s.id, origin: origin, pid: origin == .user ? s.row.info.pid : nil, modules: origin == .user ? s.modules : nil)
            s.stackIDs.set(d.id, sid)
        case .module(let info):
            let loaded = s.modules.load(
                info, space: s.id,
                sessionID: {
                    defer { nextModuleID += 1 }
                    return nextModuleID
                }, unloaded: { self.unloads.append(($0, info.time)) })
            if let m = loaded {
                newModules.append(m)
                modulesForSymbols.append(m)
            }
        case .moduleUnload(let sourceID, let time):
            if let sid = s.modules.unload(sourceID: sourceID) { unloads.append((sid, time)) }
        case .record(let r):
            if let rows = r.rows as? any SessionRows { records.append(rows) }
        }
    }

    @inline(__always) private func resolve(_ ref: StackRef, _ s: SpaceState) -> SessionStackID {
        switch ref {
        case .none: return StackTable.empty
        case .local(let id):
            if let sid = s.stackIDs.lookup(id) { return sid }
            bump(.unknownStacks)
            return StackTable.empty
        }
    }

    private func allocate(_ a: Allocation, _ s: SpaceState) {
        if let old = a.replaces { s.pendingBlocks.removeValue(forKey: old) }
        let block = Block(size: a.size, tick: tick(a.time), stack: resolve(a.stack, s), function: a.function)
        if let replaced = s.table(a.kind).insert(a.address, block) {
            if replaced.size == block.size && replaced.stack == block.stack && replaced.tick == block.tick
                && replaced.function == block.function
            {
                // One allocation reported twice (a snapshot of what was live and the stream after it both
                // carried it): it is counted already; keep the block as it was.
                if replaced.persisted { s.table(a.kind).insert(a.address, replaced) }
                return
            }
            // Still live at a new allocation of the same address: its free was never seen.
            bump(.missedFrees)
            let w = s.weighted(replaced.size)
            totals.remove(stack: replaced.stack, kind: a.kind, bytes: w.bytes, blocks: w.blocks)
            if replaced.persisted { s.removed[a.kind.slot].append(a.address) }
        }
        let w = s.weighted(a.size)
        totals.add(stack: block.stack, kind: a.kind, bytes: w.bytes, blocks: w.blocks, newAllocation: true, time: a.time)
        if a.kind == .heap && a.replaces == nil { s.temporaries.allocated(a.address, by: a.tid) }
    }

    /// Makes the live blocks of `kind` in space `id` exactly `blocks`: what the source's own table says is
    /// live now, after the source lost events. A block held here but not there was freed unseen; one there
    /// but not here (or different here) was allocated unseen. History cut before this stays as it was.
    /// Returns how many blocks it removed and added. (`beginResync`, all of `blocks` through
    /// `resync(_:block:)`, then `finishResync`.)
    public func resynchronize(_ id: SpaceID, kind: BlockKind, to blocks: [SnapshotBlock]) -> (removed: Int, added: Int) {
        guard beginResync(id, kind: kind) else { return (0, 0) }
        for b in blocks { resync(id, block: b) }
        return finishResync(id, kind: kind)
    }

    /// Starts a resync of `kind` in space `id` that reads the source's table a slice at a time while
    /// events keep arriving (at ten million blocks one read of it took seconds, with the stream stopped):
    /// from now on every block inserted is marked, whether the stream or the table brought it;
    /// `finishResync` then drops the blocks still unmarked, held here before the resync and no longer in
    /// the table (their frees were lost). A block the table shows and the stream reports too is counted
    /// once (`allocate`'s "reported twice"). False if there is nothing to resync.
    public func beginResync(_ id: SpaceID, kind: BlockKind) -> Bool {
        guard kind != .mmap, let s = space(id), !s.closed else { return false }
        s.table(kind).marking = true
        s.resyncCounts = (0, 0)
        return true
    }

    /// One block of the source's table, read while the resync of its kind is under way.
    public func resync(_ id: SpaceID, block b: SnapshotBlock) {
        guard let s = space(id), !s.closed else { return }
        let table = s.table(b.kind)
        guard table.marking else { return }
        // Nearly all of the table usually matches: each block is looked up in the table itself, one probe.
        if let held = table.findMarking(b.address) {
            if held.size == b.size && held.stack == resolve(b.stack, s) { return }  // the same block: kept, with its own time
            // Another block here: its free and the new allocation were both lost.
            drop(b.address, kind: b.kind, s)
            s.resyncCounts.removed += 1
        }
        allocate(b.allocation, s)
        s.resyncCounts.added += 1
    }

    /// Ends the resync of `kind` in space `id`; returns how many blocks it removed and added.
    public func finishResync(_ id: SpaceID, kind: BlockKind) -> (removed: Int, added: Int) {
        guard kind != .mmap, let s = space(id) else { return (0, 0) }
        let table = s.table(kind)
        guard table.marking else { return (0, 0) }
        table.marking = false
        let stale = table.takeUnmarked()
        for address in stale { drop(address, kind: kind, s) }
        s.resyncCounts.removed += stale.count
        s.pendingBlocks = s.pendingBlocks.filter { $0.value.0 != kind }
        return s.resyncCounts
    }

    /// Forgets a block whose free was never seen.
    private func drop(_ address: UInt64, kind: BlockKind, _ s: SpaceState) {
        guard let b = s.table(kind).remove(address) else { return }
        let w = s.weighted(b.size)
        totals.remove(stack: b.stack, kind: kind, bytes: w.bytes, blocks: w.blocks)
        if b.persisted { s.removed[kind.slot].append(address) }
    }

    private func free(_ address: UInt64, kind: BlockKind, pending: Bool, _ s: SpaceState) {
        guard let b = s.table(kind).remove(address) else {
            bump(.unmatchedFrees)
            return
        }
        let w = s.weighted(b.size)
        if b.persisted { s.removed[kind.slot].append(address) }
        if pending {
            totals.remove(stack: b.stack, kind: kind, bytes: w.bytes, blocks: w.blocks)
            var stashed = b
            stashed.persisted = false
            s.pendingBlocks[address] = (kind, stashed)
        } else {
            let born = time(ofTick: b.tick)
            let temporary = kind == .heap && s.temporaries.freed(address)
            totals.remove(
                stack: b.stack, kind: kind, bytes: w.bytes, blocks: w.blocks, freed: s.clock > born ? s.clock - born : 0, temporary: temporary)
        }
    }

    private func undo(_ address: UInt64, kind: BlockKind, _ s: SpaceState) {
        if kind == .mmap {
            guard let pieces = s.pendingPieces.removeValue(forKey: address) else { return }
            for p in pieces {
                _ = removeRange(p.start, p.end, s)
                s.regions.insert(p)
                totals.add(stack: p.stack, kind: .mmap, bytes: p.size, blocks: 1, newAllocation: false, time: s.clock)
            }
            return
        }
        guard let (k, b) = s.pendingBlocks.removeValue(forKey: address) else { return }
        if let replaced = s.table(k).insert(address, b) {
            bump(.missedFrees)
            let w = s.weighted(replaced.size)
            totals.remove(stack: replaced.stack, kind: k, bytes: w.bytes, blocks: w.blocks)
            if replaced.persisted { s.removed[k.slot].append(address) }
        }
        let w = s.weighted(b.size)
        totals.add(stack: b.stack, kind: k, bytes: w.bytes, blocks: w.blocks, newAllocation: false, time: s.clock)
    }

    private func pageRange(_ address: UInt64, _ length: UInt64) -> (UInt64, UInt64) {
        let lo = address & ~pageMask
        let (end, overflow) = address.addingReportingOverflow(length)
        let hi = overflow ? UInt64.max & ~pageMask : (end &+ pageMask) & ~pageMask
        return (lo, hi)
    }

    /// Removes a page range from the regions and takes it off the totals.
    private func removeRange(_ lo: UInt64, _ hi: UInt64, _ s: SpaceState) -> [RemovedPiece] {
        let removed = s.regions.remove(lo, hi)
        for r in removed {
            let born = r.piece.time
            totals.remove(
                stack: r.piece.stack, kind: .mmap, bytes: r.piece.size, blocks: 0,
                freed: r.blocksDelta < 0 ? (s.clock > born ? s.clock - born : 0) : nil, freedBlocks: 1)
            totals.adjustBlocks(stack: r.piece.stack, kind: .mmap, by: r.blocksDelta, time: s.clock)
        }
        return removed
    }

    private func map(_ a: Allocation, _ s: SpaceState) {
        var backing = a.backing ?? .anonymous
        // mremap's result keeps the backing of the region it moved or resized.
        if let old = a.replaces, let pieces = s.pendingPieces.removeValue(forKey: old), let first = pieces.first { backing = first.backing }
        let (lo, hi) = pageRange(a.address, a.size)
        guard lo < hi else { return }
        // A new mapping replaces whatever it overlaps (MAP_FIXED, or an unmap the collector missed).
        _ = removeRange(lo, hi, s)
        let r = Region(
            start: lo, end: hi, stack: resolve(a.stack, s), time: a.time, tid: a.tid, function: a.function, backing: backing)
        s.regions.insert(r)
        totals.add(stack: r.stack, kind: .mmap, bytes: r.size, blocks: 1, newAllocation: true, time: a.time)
    }

    private func unmap(_ address: UInt64, _ length: UInt64, pending: Bool, _ s: SpaceState) {
        let (lo, hi) = pageRange(address, length)
        let removed = removeRange(lo, hi, s)
        if removed.isEmpty { bump(.unmatchedFrees) }
        if pending {
            s.pendingPieces[address] = removed.map {
                var p = $0.piece
                p.persisted = false
                return p
            }
        }
    }

    // MARK: cutting batches

    /// Cuts what changed since the last cut into a batch at once; `time` stamps its interval row. At most
    /// about `CutInProgress.maxPuts` new blocks go in one batch: `complete` is false when more wait.
    public func cut(at time: UInt64, rssBytes: UInt64? = nil) -> PendingBatch {
        cutChecked(at: time, rssBytes: rssBytes).batch
    }

    /// `cut`, telling whether every new block made it into the batch.
    public func cutChecked(at time: UInt64, rssBytes: UInt64? = nil) -> (batch: PendingBatch, complete: Bool) {
        var job = beginCut()
        while !advance(&job, budget: 1 << 16) {}
        let complete = !job.full
        return (finishCut(&job, at: time, rssBytes: rssBytes), complete)
    }

    /// Starts a cut whose live-block part is done in slices (`advance`), so that checkpointing millions of
    /// new blocks never stops the event path for long. The tables keep track of which blocks are new.
    public func beginCut() -> CutInProgress {
        var job = CutInProgress()
        for s in spaces where !s.released {
            if s.closed { job.closedAtStart.insert(s.id) }
            for k in BlockKind.allCases where k != .mmap && s.table(k).count > 0 { job.tables.append((s, k, 0)) }
        }
        return job
    }

    /// Checkpoints the new blocks of about `budget` table slots; true when none is left.
    public func advance(_ job: inout CutInProgress, budget: Int) -> Bool {
        while job.table < job.tables.count {
            if job.putCount >= CutInProgress.maxPuts {
                job.full = true
                return true
            }
            let (s, kind, shard) = job.tables[job.table]
            let key = LiveTableKey(space: s.id, kind: kind)
            var found: [LiveBlock] = []
            let next = s.table(kind).collectNew(from: shard, budget: budget) { address, blk in
                found.append(
                    LiveBlock(address: address, size: blk.size, stackID: blk.stack, timeNs: self.time(ofTick: blk.tick), function: blk.function))
            }
            if !found.isEmpty {
                job.puts[key, default: []].append(contentsOf: found)
                job.putCount += found.count
            }
            if next >= AddressTable.shardCount {
                job.table += 1
            } else {
                job.tables[job.table].2 = next
                return false
            }
        }
        return true
    }

    /// Completes a cut once `advance` said it is done: totals, peaks, history, removals and regions as of now.
    public func finishCut(_ job: inout CutInProgress, at time: UInt64, rssBytes: UInt64? = nil) -> PendingBatch {
        var b = SessionBatch()
        b.timeNs = time
        let modules = newModules
        newModules.removeAll()
        b.modules = modules.map(\.row)
        b.moduleUnloads = unloads
        unloads.removeAll()
        var puts = job.puts
        job.puts = [:]
        for s in spaces {
            if s.rowDirty {
                b.spaces.append(s.row)
                s.rowDirty = false
            }
            for k in BlockKind.allCases where k != .mmap {
                let key = LiveTableKey(space: s.id, kind: k)
                let removes = s.removed[k.slot]
                s.removed[k.slot].removeAll(keepingCapacity: true)
                if !removes.isEmpty, var p = puts[key] {
                    // A block checkpointed by this cut and freed while it was in progress: its removal
                    // came after the put, so the put must go (a delta applies removals first). A put whose
                    // block is still live and checkpointed stays: the removal was of an older block there.
                    let removed = Set(removes)
                    let table = s.table(k)
                    p.removeAll { put in
                        guard removed.contains(put.address) else { return false }
                        guard let now = table.find(put.address), now.persisted else { return true }
                        return now.size != put.size || now.stack != put.stackID || self.time(ofTick: now.tick) != put.timeNs
                    }
                    puts[key] = p
                }
                let changes = LiveChanges(puts: puts[key] ?? [], removes: removes)
                if !changes.isEmpty { b.live[key] = changes }
            }
            let (deletedStarts, written) = s.regions.takeChanges()
            if !deletedStarts.isEmpty || !written.isEmpty {
                b.live[LiveTableKey(space: s.id, kind: .mmap)] = LiveChanges(
                    puts: written.map {
                        LiveBlock(address: $0.start, size: $0.size, stackID: $0.stack, timeNs: $0.time, function: $0.function, backing: $0.backing)
                    }, removes: deletedStarts)
            }
            if s.closed && !job.full && !s.released && job.closedAtStart.contains(s.id) { s.releaseLiveMemory() }
        }
        (b.totals, b.history, b.peaks) = totals.takeChanges()
        b.interval = IntervalRow(timeNs: time, outstanding: totals.kinds, rssBytes: rssBytes)
        counters[.events] = events
        b.counters = counters
        b.records = records
        records.removeAll()
        let symbolModules = modulesForSymbols
        modulesForSymbols.removeAll()
        return PendingBatch(batch: b, newStacks: stacks.takeNew(), newModules: symbolModules)
    }

    /// The stacks defined since the last cut or take, and the modules loaded since then, so they can
    /// be symbolized while the program runs; the next cut carries only what came after.
    public func takeNewStacks() -> (modules: [SessionModule], stacks: [NewStack]) {
        let modules = modulesForSymbols
        modulesForSymbols.removeAll()
        return (modules, stacks.takeNew())
    }

    /// Whether stacks wait to be symbolized.
    public var hasNewStacks: Bool { stacks.hasUnsent }

    // MARK: inspection

    /// Outstanding bytes and blocks over every kind and space.
    public var outstanding: (bytes: UInt64, blocks: UInt64) { totals.outstanding }

    /// Live blocks of one kind over every open space, for tests and summaries.
    public func liveCount(_ kind: BlockKind) -> Int { spaces.reduce(0) { $0 + ($1.closed ? 0 : $1.liveCount(kind)) } }

    /// Live blocks of every kind in one space.
    public func liveCount(in id: SpaceID) -> Int { space(id)?.liveCount ?? 0 }

    /// Whether space `id` has the definition of its source's stack `local`.
    public func knowsStack(_ local: UInt64, in id: SpaceID) -> Bool { space(id)?.stackIDs.lookup(local) != nil }
}

extension CounterName {
    /// Events for an address space the tracker does not know, or one already closed.
    public static let eventsWithoutSpace = CounterName("events_without_space")
}
