import CollectionRunner
import Glibc
import SessionStore
import Tracking
import Vocabulary

/// One process's shim ring as an event source: launched by this collector, or attached to. Keeps the
/// reader's heartbeat, opens each reported module's file the safe way (what the process really maps,
/// never simply the path it claims), and ends when the process has exited and the ring is drained.
public final class RingSource: EventSource {
    public let reader: RingReader
    public let pid: Int32
    private let program: LaunchedProgram?
    public let command: [String]
    /// The space this ring feeds, once `begin` opened it.
    public private(set) var space: SpaceID = 0
    /// The space this image continues (the image before an exec, or a fork child's parent).
    private let parent: SpaceID?
    /// How many records one poll takes at most, so the runner still flushes and the heartbeat stays fresh.
    private let batch: Int
    private var lastPoll = 0
    private var programEnd: SessionEnd?
    /// /proc/PID/maps, read at most once per poll that brings module records.
    private var maps: [ProcMapping]??
    /// The files the process mapped when the collection began (or when a later poll read its maps),
    /// opened at once by mapping start: a program that exits before its module records are read still
    /// has its modules opened the safe way.
    private var mappedFiles: [UInt64: (ProcMapping, ModuleFile)] = [:]
    /// Who the process is, read while it lives: what a module path it claims may open once the file
    /// is no longer mapped (ModuleFile.open).
    private let owner: ProcessOwner?
    /// The shim's live table: read at an attach (what was live before it) and after lost records (resync).
    private var live: LiveTable?
    /// An attach applies the live table's snapshot before the first record it reads.
    private let snapshotAtStart: Bool
    private var stats = LiveStats()
    /// Lost records the last resync made good (the shim's lost_events then).
    private var lostAtResync: UInt64 = 0
    private var lastResync: UInt64 = 0
    /// Resyncs are at most this frequent while records keep being lost; the last comes at the end.
    private let resyncInterval: UInt64 = 1_000_000_000

    /// `maps`: the process's mappings, read before the ring was claimed (a launched program waits for its
    /// collector then, so its modules are still there to open even if it exits at once afterwards).
    init(
        reader: RingReader, pid: Int32, program: LaunchedProgram?, command: [String], maps: [ProcMapping]?, parent: SpaceID? = nil,
        live: LiveTable? = nil, snapshotAtStart: Bool = false, batch: Int = 1 << 16
    ) {
        self.reader = reader
        self.live = live
        self.snapshotAtStart = snapshotAtStart
        self.pid = pid
        self.program = program
        self.command = command
        self.parent = parent
        self.batch = batch
        owner = ProcessOwner.of(pid: pid)
        remember(maps)
    }

    public func begin(into tracker: Tracker) throws {
        space = tracker.openSpace(
            SpaceInfo(
                kind: .user, pid: pid, command: command, startNs: reader.info.startMonotonicNs, parent: parent,
                samplingIntervalBytes: reader.info.sampleBytes))
        if snapshotAtStart, let live {
            // The reader claimed the ring and started its generation already: the table is read after that
            // point, and the stream from it (leakring.h: "Attach (and resync)"). Nothing is tracked yet, so it
            // is read at once, straight into the tracker.
            var scan = try live.beginScan(decoder: reader)
            read(&scan, from: live, budget: .max, into: tracker) { tracker.apply(.alloc($0.allocation), in: space) }
            stats.snapshotBlocks = UInt64(scan.blocks)
            stats.snapshotBytes = scan.bytes
        }
    }

    /// Reads up to `budget` slots of the table: the module log's news first, each stack a block names
    /// before the block, and the scan's findings in the stats.
    private func read(_ scan: inout LiveScan, from live: LiveTable, budget: Int, into tracker: Tracker, _ block: (SnapshotBlock) -> Void) {
        let before = (scan.unreadableSlots, scan.unknownStacks)
        for event in scan.takeModuleEvents() { deliver(event, tracker) }
        live.scan(
            &scan, budget: budget, knows: { tracker.knowsStack(UInt64($0), in: space) }, define: { tracker.apply(.stack($0), in: space) },
            block: block)
        stats.unreadableSlots &+= UInt64(scan.unreadableSlots - before.0)
        stats.unknownStacks &+= UInt64(scan.unknownStacks - before.1)
        stats.tableFull = scan.tableFull
    }

    /// A resync under way. First the records from before the generation `point` that it began are
    /// applied (only the lost ones are missing); then the shim's table is read a slice per poll while the
    /// records after `point` keep being applied, and the tracker drops what neither vouched for
    /// (`Tracker.beginResync`).
    private enum Resync {
        case draining(point: UInt64, since: UInt64)
        case scanning(LiveScan)
    }
    private var resync: Resync?

    /// Slots of the shim's table read per poll during a resync: at ten million live blocks a poll then
    /// still drains the ring every few tens of milliseconds, and the whole table is read in seconds.
    private static let resyncSlice = 1 << 17

    /// After lost records: start a new generation; the table is read once the reader reaches it.
    private func beginResync() throws {
        guard live != nil else { return }
        lostAtResync = reader.counters.lostEvents
        resync = .draining(point: try reader.beginGeneration(), since: monotonicNow())
        if stats.firstLossNs == 0 { stats.firstLossNs = lossSeenNs }
    }

    /// The reader is at the generation's start: from here the table is read beside the stream.
    private func startScan(into tracker: Tracker) throws {
        guard let live, tracker.beginResync(space, kind: .heap) else {
            resync = nil
            return
        }
        resync = .scanning(try live.beginScan(decoder: reader))
    }

    /// Reads the next slice of the table (all of it when `budget` is .max); at its end the live heap
    /// blocks are exact again (the history between the loss and now is not).
    private func continueScan(_ scan: inout LiveScan, budget: Int, into tracker: Tracker) {
        guard let live else { return }
        read(&scan, from: live, budget: budget, into: tracker) { tracker.resync(space, block: $0) }
        stats.resyncSlices &+= 1
        guard scan.done else { return }
        resync = nil
        let (removed, added) = tracker.finishResync(space, kind: .heap)
        stats.resyncs &+= 1
        stats.resyncRemoved &+= UInt64(removed)
        stats.resyncAdded &+= UInt64(added)
        stats.lastResyncNs = monotonicNow()
        lastResync = stats.lastResyncNs
    }

    /// When this collector first saw records lost.
    private var lossSeenNs: UInt64 = 0

    /// Starts a resync when records were lost since the last one: at most every interval while running;
    /// `final` at the end, which also completes it at once (what never committed is given up).
    private func resyncIfLost(into tracker: Tracker, final: Bool) throws {
        if resync == nil && reader.counters.lostEvents != lostAtResync {
            // A launched program may create its table just after the ring the collector found first.
            if live == nil { live = try? LiveTable.open(for: reader.mapping) }
            let now = monotonicNow()
            if lossSeenNs == 0 { lossSeenNs = now }
            if live != nil && (final || now &- lastResync >= resyncInterval) { try beginResync() }
        }
        guard final else { return }
        if case .draining(let point, _) = resync {
            while reader.position != point {
                let r = try reader.drain(until: point) { deliver($0, tracker) }
                if r.records == 0 {
                    reader.skip(to: point)
                    break
                }
            }
            try startScan(into: tracker)
        }
        // Records still in the ring may be applied before or after: the marks make either order right.
        if case .scanning(var scan) = resync { continueScan(&scan, budget: .max, into: tracker) }
    }

    private func deliver(_ event: Event, _ tracker: Tracker) {
        switch event {
        case .module(var m):
            m.time = monotonicNow()
            m.file = file(for: m)
            tracker.apply(.module(m), in: space)
        case .moduleUnload(let id, _):
            tracker.apply(.moduleUnload(id: id, time: monotonicNow()), in: space)
        default:
            tracker.apply(event, in: space)
        }
    }

    /// The image is over (its process exited or exec'd): reads what it committed and closes its space.
    public func finish(tracker: Tracker, end: SpaceEnd) throws {
        defer {
            reader.detach()
            tracker.closeSpace(space, at: monotonicNow(), end: end)
        }
        while try poll(into: tracker) > 0 {}
        // The image's table is final now: what records were lost, it still says (as in `finished`).
        try resyncIfLost(into: tracker, final: true)
    }

    private func remember(_ maps: [ProcMapping]?) {
        for m in maps ?? [] where m.isFile && mappedFiles[m.start] == nil {
            if let f = ModuleFile.open(pid: pid, mapping: m) { mappedFiles[m.start] = (m, f) }
        }
    }

    /// The module's file: from the mappings opened earlier, else what the process maps now.
    fileprivate func file(for m: ModuleInfo) -> ModuleFile? {
        if let hit = mappedFiles.values.first(where: { $0.0.start < m.hi && m.lo < $0.0.end }) { return hit.1 }
        if maps == nil {
            // An exited process (a zombie included) shows no mappings: then it has none to ask about.
            let now = ProcMaps.read(pid: pid).flatMap { $0.isEmpty ? nil : $0 }
            maps = .some(now)
            remember(now)
            if let hit = mappedFiles.values.first(where: { $0.0.start < m.hi && m.lo < $0.0.end }) { return hit.1 }
        }
        return ModuleFile.open(pid: pid, claimedPath: m.path, lo: m.lo, hi: m.hi, maps: maps ?? nil, owner: owner)
    }

    public func poll(into tracker: Tracker) throws -> Int {
        reader.heartbeat()
        maps = nil
        guard let inner = tracker.sink(for: space) else { return 0 }
        var sink = ModuleOpeningSink(inner: inner, source: self)
        switch resync {
        case .draining(let point, let since):
            let r = try reader.drain(maxRecords: batch, until: point, into: &sink)
            if reader.position != point && r.records == 0 && monotonicNow() &- since > 1_000_000_000 { reader.skip(to: point) }
            let reached = reader.position == point
            if reached { try startScan(into: tracker) }
            lastPoll = r.records + (reached ? 1 : 0)  // a poll that reached the point did work
        case .scanning(var scan):
            lastPoll = try reader.drain(maxRecords: batch, into: &sink).records + 1
            continueScan(&scan, budget: Self.resyncSlice, into: tracker)
            if case .scanning = resync { resync = .scanning(scan) }
        case nil:
            lastPoll = try reader.drain(maxRecords: batch, into: &sink).records
            try resyncIfLost(into: tracker, final: false)
        }
        return lastPoll
    }

    /// Passes events straight to the tracker, but stamps module records and opens their files first.
    private struct ModuleOpeningSink: EventSink {
        var inner: Tracker.SpaceSink
        unowned(unsafe) let source: RingSource

        mutating func alloc(_ a: Allocation) { inner.alloc(a) }
        mutating func free(address: UInt64, kind: BlockKind, pending: Bool) { inner.free(address: address, kind: kind, pending: pending) }
        mutating func unmap(address: UInt64, length: UInt64, pending: Bool) { inner.unmap(address: address, length: length, pending: pending) }
        mutating func undo(address: UInt64, kind: BlockKind) { inner.undo(address: address, kind: kind) }
        func lookupHint(address: UInt64, kind: BlockKind) -> UnsafeRawPointer? { inner.lookupHint(address: address, kind: kind) }
        var hintsWorthFetching: Bool { inner.hintsWorthFetching }

        mutating func event(_ e: Event) {
            switch e {
            case .module(var m):
                m.time = monotonicNow()
                m.file = source.file(for: m)
                inner.event(.module(m))
            case .moduleUnload(let id, _):
                inner.event(.moduleUnload(id: id, time: monotonicNow()))
            default:
                inner.event(e)
            }
        }
    }

    /// A poll at least this big means the writers are running flat out (a trickle comes in ones and twos).
    static let paceAfterEvents = 1024
    /// The pause then: short against the time writers need to fill the ring (16 MiB by default: 40 ms at
    /// mallocbench's 400 MB/s), long enough that the next poll takes tens of thousands of records. Chasing
    /// the writers a few thousand records behind cost the collector about 15 % more CPU per event on two
    /// cores (a cold start of its loop per poll, and a core taken from the app more often); see the README.
    static let paceNs: UInt64 = 2_000_000
    /// Rings smaller than this are not paced: a pause could fill them.
    static let paceMinimumRing: UInt64 = 4 << 20

    /// How long to pause after a poll of `events` events, with `backlog` bytes already waiting in a ring of
    /// `ringSize` bytes and `timeoutNs` until the runner's next deadline: 0 for a trickle, a small ring or a
    /// backlog of an eighth of the ring or more (that one is a batch already).
    static func pauseNs(after events: Int, ringSize: UInt64, backlog: UInt64, timeoutNs: UInt64) -> UInt64 {
        guard events >= paceAfterEvents, ringSize >= paceMinimumRing, backlog < ringSize / 8 else { return 0 }
        return min(timeoutNs, paceNs)
    }

    public func pace(after events: Int, timeoutNs: UInt64) {
        let ns = Self.pauseNs(after: events, ringSize: reader.info.dataSize, backlog: reader.backlogBytes, timeoutNs: timeoutNs)
        guard ns > 0 else { return }
        // A plain sleep, not the futex: while the flag is up every commit checks whether to wake us.
        var ts = timespec(tv_sec: 0, tv_nsec: Int(ns))
        nanosleep(&ts, nil)
    }

    public func wait(timeoutNs: UInt64) {
        _ = reader.sleepUntilData(timeout: .nanoseconds(Int64(min(timeoutNs, UInt64(Int64.max)))))
    }

    public func finished(tracker: Tracker) -> SessionEnd? {
        if programEnd == nil {
            if let program {
                programEnd = program.poll()
            } else if !RingMapping.isAlive(pid: pid) {
                programEnd = .gone
            }
        }
        // After the exit, keep going until a poll finds nothing (a writer killed between reserving and
        // committing leaves bytes that never become readable: they end the drain too).
        guard let end = programEnd, lastPoll == 0 else { return nil }
        // The app is gone and its table final: what records were lost, it still says.
        try? resyncIfLost(into: tracker, final: true)
        reader.detach()
        tracker.closeSpace(space, at: monotonicNow(), end: .exited)
        return end
    }

    public func stop(tracker: Tracker) -> SessionEnd {
        try? resyncIfLost(into: tracker, final: true)
        reader.detach()
        tracker.closeSpace(space, at: monotonicNow(), end: .detached)
        return .detached
    }

    public var firstSignalStops: Bool { program == nil }

    public func forward(signal: Int32) { program?.send(signal) }

    public var rssPID: Int32? { pid }

    public var counters: [CounterName: UInt64] {
        let c = reader.counters
        return [
            .lostEvents: c.lostEvents, .lostBytes: c.lostBytes, .ringWaits: c.waits, .reentrantCalls: c.reentrantCalls,
            .stackTableFull: c.stackTableFull, .truncatedStacks: c.truncatedStacks, .ringWaitNs: c.waitNs,
            .unwindMismatches: c.unwindMismatches, .unwindFallbacks: c.unwindFallbacks,
        ].merging(stats.counters) { $1 }.merging(c.ringUnmappedNs != 0 ? [.ringUnmappedNs: c.ringUnmappedNs] : [:]) { $1 }
    }
}

/// What the live table gave this collection: the blocks from before the attach, and the resyncs.
struct LiveStats {
    var snapshotBlocks: UInt64 = 0
    var snapshotBytes: UInt64 = 0
    var unreadableSlots: UInt64 = 0
    var unknownStacks: UInt64 = 0
    var tableFull: UInt64 = 0
    var resyncs: UInt64 = 0
    var resyncRemoved: UInt64 = 0
    var resyncAdded: UInt64 = 0
    var resyncSlices: UInt64 = 0
    var firstLossNs: UInt64 = 0
    var lastResyncNs: UInt64 = 0

    var counters: [CounterName: UInt64] {
        var c: [CounterName: UInt64] = [:]
        if snapshotBlocks > 0 || snapshotBytes > 0 {
            c[.snapshotBlocks] = snapshotBlocks
            c[.snapshotBytes] = snapshotBytes
        }
        if unreadableSlots > 0 { c[.liveTableUnreadableSlots] = unreadableSlots }
        if unknownStacks > 0 { c[.liveTableUnknownStacks] = unknownStacks }
        if tableFull > 0 { c[.liveTableFull] = tableFull }
        if resyncs > 0 {
            c[.resyncs] = resyncs
            c[.resyncRemovedBlocks] = resyncRemoved
            c[.resyncAddedBlocks] = resyncAdded
            c[.resyncSlices] = resyncSlices
            c[.resyncFirstLossNs] = firstLossNs
            c[.resyncLastNs] = lastResyncNs
        }
        return c
    }
}

extension CounterName {
    /// Times a writer in the app waited for the collector on a full ring.
    public static let ringWaits = CounterName("ring_waits")
    /// Nanoseconds the app's threads spent waiting for the collector on a full ring, summed over threads.
    public static let ringWaitNs = CounterName("ring_wait_ns")
    /// LEAKSHIM_UNWIND=compare: stacks where the shim's own walk and libunwind's differed.
    public static let unwindMismatches = CounterName("unwind_mismatches")
    /// Stacks the shim's own walk handed to libunwind (unwind information it does not model).
    public static let unwindFallbacks = CounterName("unwind_fallbacks")
    /// Allocator calls made while the shim itself was running (its own bookkeeping); not tracked.
    public static let reentrantCalls = CounterName("reentrant_calls")
    /// Allocations charged to no stack because the shim's stack table was full.
    public static let stackTableFull = CounterName("stack_table_full")
    /// Stacks cut at the depth limit.
    public static let truncatedStacks = CounterName("truncated_stacks")
}
