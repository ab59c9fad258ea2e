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

    /// `maps`: the process's mappings, read before the ring was claimed (a launched program waits for its
    /// collector then, so its modules are still there to open even if it exits at once afterwards).
    init(
        reader: RingReader, pid: Int32, program: LaunchedProgram?, command: [String], maps: [ProcMapping]?, parent: SpaceID? = nil,
        batch: Int = 1 << 16
    ) {
        self.reader = reader
        self.pid = pid
        self.program = program
        self.command = command
        self.parent = parent
        self.batch = batch
        remember(maps)
    }

    public func begin(into tracker: Tracker) throws {
        space = tracker.openSpace(
            SpaceInfo(
                kind: .user, pid: pid, command: command, startNs: reader.info.startMonotonicNs, parent: parent,
                samplingIntervalBytes: reader.info.sampleBytes))
    }

    /// The image is over (its process exited or exec'd): reads what it committed and closes its space.
    public func finish(tracker: Tracker, end: SpaceEnd) throws {
        defer {
            reader.detach()
            tracker.closeSpace(space, at: monotonicNow(), end: end)
        }
        while try poll(into: tracker) > 0 {}
    }

    private func remember(_ maps: [ProcMapping]?) {
        for m in maps ?? [] where m.isFile && mappedFiles[m.start] == nil {
            if let f = ModuleFile.open(pid: pid, mapping: m) { mappedFiles[m.start] = (m, f) }
        }
    }

    /// The module's file: from the mappings opened earlier, else what the process maps now.
    private func file(for m: ModuleInfo) -> ModuleFile? {
        if let hit = mappedFiles.values.first(where: { $0.0.start < m.hi && m.lo < $0.0.end }) { return hit.1 }
        if maps == nil {
            // An exited process (a zombie included) shows no mappings: then it has none to ask about.
            let now = ProcMaps.read(pid: pid).flatMap { $0.isEmpty ? nil : $0 }
            maps = .some(now)
            remember(now)
            if let hit = mappedFiles.values.first(where: { $0.0.start < m.hi && m.lo < $0.0.end }) { return hit.1 }
        }
        return ModuleFile.open(pid: pid, claimedPath: m.path, lo: m.lo, hi: m.hi, maps: maps ?? nil)
    }

    public func poll(into tracker: Tracker) throws -> Int {
        reader.heartbeat()
        maps = nil
        let space = self.space
        lastPoll = try reader.drain(maxRecords: batch) { event in
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
        }.records
        return lastPoll
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
        // After the exit, keep going until the ring is empty.
        // After the exit, keep going until a poll finds nothing (a writer killed between reserving and
        // committing leaves bytes that never become readable: they end the drain too).
        guard let end = programEnd, lastPoll == 0 else { return nil }
        reader.detach()
        tracker.closeSpace(space, at: monotonicNow(), end: .exited)
        return end
    }

    public func stop(tracker: Tracker) -> SessionEnd {
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
        ]
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
