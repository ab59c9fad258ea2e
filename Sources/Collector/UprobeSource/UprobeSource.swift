import CLibBPF
import CollectionRunner
import Glibc
import SessionStore
import ShimSource
import Tracking
import Vocabulary

/// A process traced through uprobes (BPF-only mode) as an event source: drains the uprobe programs'
/// ring buffer into the shared `Event`s, defines stacks from the kernel's stack map, and reports the
/// process's modules from /proc/PID/maps as they come and go. Ends when the process has exited and the
/// ring is drained; stopping removes the probes and leaves the process running.
public final class UprobeSource: EventSource {
    public let pid: Int32
    private let programs: UprobePrograms
    private let modules: ProcessModules
    private let stacks: UprobeStacks
    private let program: LaunchedProgram?
    private let command: [String]
    private var ring: OpaquePointer?
    private var space: SpaceID = 0
    /// Borrowed for the duration of one `poll`, for the ring buffer callback.
    private var tracker: Unmanaged<Tracker>?
    private var handled = 0
    private var lastPoll = 0
    private var programEnd: SessionEnd?
    /// Set once a poll has rescanned the mappings, so a burst of unknown frames costs one scan.
    private var rescannedThisPoll = false
    private var undecodable: UInt64 = 0
    private let startNs: UInt64

    init(programs: UprobePrograms, modules: ProcessModules, program: LaunchedProgram?, command: [String], startNs: UInt64) throws(UprobeError) {
        self.pid = programs.pid
        self.programs = programs
        self.modules = modules
        self.program = program
        self.command = command
        self.startNs = startNs
        stacks = UprobeStacks(stacksFD: programs.stacksFD, depth: programs.depth)
        ring = ring_buffer__new(programs.eventsFD, uprobeRingSample, Unmanaged.passUnretained(self).toOpaque(), nil)
        if ring == nil { throw .ringBuffer(String(cString: strerror(errno))) }
    }

    deinit { ring_buffer__free(ring) }

    public func begin(into tracker: Tracker) throws {
        // Weighted exactly as the shim's sampled blocks are: the tracker scales by the space's interval.
        space = tracker.openSpace(
            SpaceInfo(kind: .user, pid: pid, command: command, startNs: startNs, samplingIntervalBytes: programs.sampleBytes))
        for m in modules.loaded.values.sorted(by: { $0.info.lo < $1.info.lo }) { tracker.apply(.module(m.info), in: space) }
    }

    public func poll(into tracker: Tracker) throws -> Int {
        self.tracker = Unmanaged.passUnretained(tracker)
        handled = 0
        rescannedThisPoll = false
        let r = ring_buffer__consume(ring)
        self.tracker = nil
        if r < 0 { throw UprobeError.ringBuffer(String(cString: strerror(-r))) }
        lastPoll = handled
        return handled
    }

    /// Records are submitted without a wakeup, so waiting is sleeping (at most 10 ms, which the ring
    /// buffer absorbs).
    public func wait(timeoutNs: UInt64) {
        var ts = timespec(tv_sec: Int(timeoutNs / 1_000_000_000), tv_nsec: Int(timeoutNs % 1_000_000_000))
        nanosleep(&ts, nil)
    }

    public func finished(tracker: Tracker) -> SessionEnd? {
        if programEnd == nil {
            if let program {
                programEnd = program.poll()
            } else if !Self.isAlive(pid) {
                programEnd = .gone
            }
        }
        // After the exit, keep going until a poll finds nothing.
        guard let end = programEnd, lastPoll == 0 else { return nil }
        programs.detach()
        tracker.closeSpace(space, at: monotonicNow(), end: .exited)
        return end
    }

    public func stop(tracker: Tracker) -> SessionEnd {
        programs.detach()
        tracker.closeSpace(space, at: monotonicNow(), end: .detached)
        return .detached
    }

    public var firstSignalStops: Bool { program == nil }

    public func forward(signal: Int32) { program?.send(signal) }

    public var rssPID: Int32? { pid }

    public var counters: [CounterName: UInt64] {
        let c = programs.counters()
        func at(_ k: ue_counter) -> UInt64 { c[Int(k.rawValue)] }
        return [
            .lostEvents: at(UC_RING_FULL) &+ at(UC_CALLS_FULL) &+ at(UC_STACK_FAILED) &+ at(UC_RETURN_MISSED) &+ at(UC_SAMPLED_FULL)
                &+ stacks.lookupFailures &+ undecodable,
            .lostBytes: at(UC_RING_FULL_BYTES),
            .uprobeRingFull: at(UC_RING_FULL),
            .uprobeCallsFull: at(UC_CALLS_FULL),
            .uprobeStacksFailed: at(UC_STACK_FAILED) &+ stacks.lookupFailures,
            .uprobeStacksInline: at(UC_STACK_INLINE),
            .uprobeReturnsMissed: at(UC_RETURN_MISSED),
            .uprobeAllocatorCalls: at(UC_NESTED),
            .uprobeSampledSetFull: at(UC_SAMPLED_FULL),
            .uprobeSampledOut: at(UC_SAMPLED_OUT),
            .stacksCutShort: stacks.cutShort,
            .truncatedStacks: stacks.truncated,
        ]
    }

    /// A live process that is not a zombie.
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = ProcFile.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        return state != nil && state != "Z" && state != "X"
    }

    // MARK: records

    fileprivate func handle(_ data: UnsafeRawPointer, size: Int) {
        guard let tracker else { return }
        handled += 1
        guard let record = UprobeRecord.decode(data, size: size) else {
            undecodable &+= 1
            return
        }
        tracker._withUnsafeGuaranteedRef { t in apply(record, t) }
    }

    private func apply(_ record: UprobeRecord, _ t: Tracker) {
        let event = record.event { stackID, inline in
            stackID >= 0 ? (stacks.known(mapID: stackID) ?? newStack(stackID, inline, t)) : newStack(stackID, inline, t)
        }
        if let event { t.apply(event, in: space) } else { rescan(t) }
    }

    private func newStack(_ stackID: Int32, _ inline: [UInt64], _ t: Tracker) -> StackRef {
        let space = self.space
        let define: (StackDefinition) -> Void = { t.apply(.stack($0), in: space) }
        let complete: ([UInt64]) -> Bool = { self.isComplete($0, t) }
        return stackID >= 0
            ? stacks.stack(mapID: stackID, complete: complete, define: define)
            : stacks.stack(inline: inline, complete: complete, define: define)
    }

    /// Whether a new stack's frames all lie in known mappings (scanning again once per poll if not, so
    /// a library loaded since is reported before the stack), and its walk ended in a module: a
    /// frame-pointer walk that ends anywhere else lost its way.
    private func isComplete(_ frames: [UInt64], _ t: Tracker) -> Bool {
        if !rescannedThisPoll, frames.contains(where: { !modules.knows($0) }) { rescan(t) }
        guard let last = frames.last else { return false }
        return modules.inModule(last)
    }

    private func rescan(_ t: Tracker) {
        rescannedThisPoll = true
        let now = monotonicNow()
        guard let (added, removed) = modules.rescan(now: now) else { return }
        for id in removed { t.apply(.moduleUnload(id: id, time: now), in: space) }
        for m in added { t.apply(.module(m.info), in: space) }
    }
}

private let uprobeRingSample: ring_buffer_sample_fn = { ctx, data, size in
    guard let ctx, let data else { return 0 }
    // The source outlives its ring (deinit frees it), so the callback borrows it without a retain.
    Unmanaged<UprobeSource>.fromOpaque(ctx)._withUnsafeGuaranteedRef { $0.handle(UnsafeRawPointer(data), size: Int(size)) }
    return 0
}

extension CounterName {
    /// BPF-only mode: records the ring buffer had no room for.
    public static let uprobeRingFull = CounterName("uprobe_ring_full")
    /// Calls whose arguments could not be kept for their return (the per-thread map was full).
    public static let uprobeCallsFull = CounterName("uprobe_calls_full")
    /// Allocations whose user stack could not be captured (charged to no stack).
    public static let uprobeStacksFailed = CounterName("uprobe_stacks_failed")
    /// Stack-map collisions whose frames went inline in the record (nothing lost).
    public static let uprobeStacksInline = CounterName("uprobe_stacks_inline")
    /// Calls whose return probe never fired.
    public static let uprobeReturnsMissed = CounterName("uprobe_returns_missed")
    /// Allocator calls the allocator made itself (malloc inside realloc, mmap inside malloc): not tracked.
    public static let uprobeAllocatorCalls = CounterName("uprobe_allocator_calls")
    /// Sampling: sampled blocks the set of sampled addresses had no room for (not recorded: lost).
    public static let uprobeSampledSetFull = CounterName("uprobe_sampled_set_full")
    /// Sampling: allocations decided against at entry (no stack, no record; not a loss).
    public static let uprobeSampledOut = CounterName("uprobe_sampled_out")
}
