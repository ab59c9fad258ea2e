import CLibBPF
import CollectionRunner
import Foundation
import KernelSession
import SessionStore
import Symbols
import Tracking
import Vocabulary

/// The kernel side as an `EventSource`: drains the BPF ring buffer, turns allocation records into the
/// shared `Event`s for the tracker, and OOM, reclaim, kswapd and shrinker records into the kernel tables.
final class KernelEventSource: EventSource {
    private let programs: KernelPrograms
    private let stacks: KernelStacks
    private let tables = KernelTables()
    private var ring: OpaquePointer?
    /// Set for the duration of one `poll`, for the ring buffer callback: borrowed, not retained, since
    /// the callbacks run inside `ring_buffer__consume` while `poll`'s caller holds the tracker.
    private var tracker: Unmanaged<Tracker>?
    private var handled = 0
    private var stopped = false
    fileprivate var handledThisPoll: Int { handled }
    /// Records one poll applies at most, so the runner flushes on time however fast the kernel produces.
    fileprivate static let pollBudget = 1 << 16
    private let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
    /// The kernel's OOM kill count already attributed to an event (see `oomEvent`).
    private var oomKillsSeen: UInt64?
    private var writepagesSeen: UInt64 = 0
    private var space: SpaceID = 0
    private let command: [String]
    private let filterPID: Int32?
    /// The kernel tables' interval rows go out on the source's own schedule, as records on the event path.
    private let intervalNs: UInt64
    private var nextTablesNs: UInt64 = 0

    private static let allocPrograms = ["kmalloc", "kmem_cache_alloc", "kmem_cache_alloc_node", "mm_page_alloc", "percpu_alloc_percpu"]
    private static let primaryFreePrograms = ["kfree", "kmem_cache_free", "mm_page_free", "percpu_free_percpu"]

    init(programs: KernelPrograms, tracepoints: [TracepointRow], intervalNs: UInt64, command: [String], pid: Int32?) throws(KernelError) {
        self.programs = programs
        self.intervalNs = intervalNs
        self.command = command
        filterPID = pid
        stacks = KernelStacks(stacksFD: programs.stacksFD)
        oomKillsSeen = SystemSnapshot.oomKills()
        writepagesSeen = programs.counters()[Int(KC_WRITEPAGE.rawValue)]
        tables.tracepoints(tracepoints)
        ring = ring_buffer__new(programs.eventsFD, kernelRingSample, Unmanaged.passUnretained(self).toOpaque(), nil)
        if ring == nil { throw .ringBuffer(String(cString: strerror(errno))) }
    }

    deinit { ring_buffer__free(ring) }

    /// kallsyms as read when the programs were loaded.
    var kernelSymbols: KernelSymbols? { stacks.symbols }

    func begin(into tracker: Tracker) throws {
        let now = monotonicNow()
        space = tracker.openSpace(SpaceInfo(kind: .kernel, pid: filterPID, command: command, startNs: now))
        nextTablesNs = now &+ intervalNs
    }

    func poll(into tracker: Tracker) throws -> Int {
        // The kernel never stops producing: after the stop's own poll, the runner's drain loop must end.
        if stopped { return 0 }
        self.tracker = Unmanaged.passUnretained(tracker)
        handled = 0
        let r = ring_buffer__consume(ring)
        self.tracker = nil
        if r < 0 && r != pollBudgetSpent { throw KernelError.ringBuffer(String(cString: strerror(-r))) }
        let now = monotonicNow()
        if now >= nextTablesNs {
            emitTables(tracker, at: now)
            nextTablesNs = now &+ intervalNs
        }
        return handled
    }

    func finished(tracker: Tracker) -> SessionEnd? { nil }

    func stop(tracker: Tracker) -> SessionEnd {
        // What arrived up to now, then the kernel tables' last rows.
        // Everything produced before the stop (the backlog of a collector that fell behind holds the
        // OOM kill that made the user stop), in bounded polls until one finds less than a full budget;
        // the bound keeps a machine that never stops allocating from holding the stop forever.
        for _ in 0..<256 {
            guard let n = try? poll(into: tracker), n >= Self.pollBudget else { break }
        }
        stopped = true
        emitTables(tracker, at: monotonicNow())
        tracker.closeSpace(space, at: monotonicNow(), end: .detached)
        return .stopped
    }

    private func emitTables(_ tracker: Tracker, at now: UInt64) {
        let writepages = programs.counters()[Int(KC_WRITEPAGE.rawValue)]
        defer { writepagesSeen = writepages }
        let rows = tables.take(at: now, writepages: writepages &- writepagesSeen, meminfo: SystemSnapshot.meminfo())
        tracker.apply(.record(SourceRecord(rows)), in: space)
    }

    /// Records are submitted without a wakeup (see common.bpf.h), so waiting is sleeping: the loop
    /// sleeps at most 10 ms, which a ring buffer of megabytes absorbs.
    func wait(timeoutNs: UInt64) {
        var ts = timespec(tv_sec: Int(timeoutNs / 1_000_000_000), tv_nsec: Int(timeoutNs % 1_000_000_000))
        nanosleep(&ts, nil)
    }

    var counters: [CounterName: UInt64] {
        let c = programs.counters()
        func at(_ k: ke_counter) -> UInt64 { c[Int(k.rawValue)] }
        func misses(_ names: [String]) -> UInt64 {
            names.filter(programs.attachedPrograms.contains).reduce(0) { $0 &+ programs.recursionMisses($1) }
        }
        let primaryFreeMisses = misses(Self.primaryFreePrograms)
        return [
            .lostEvents: at(KC_RING_FULL_ALLOC) &+ at(KC_RING_FULL_FREE) &+ at(KC_RING_FULL_OTHER),
            .lostBytes: at(KC_RING_FULL_BYTES),
            .kernelAllocMisses: misses(Self.allocPrograms),
            // Every primary miss is a free the backup should have sent; those it did not are lost.
            .kernelFreeMisses: primaryFreeMisses &- min(at(KC_FREE_RESCUED), primaryFreeMisses),
            .kernelFreesRescued: at(KC_FREE_RESCUED),
            .kernelStacksInline: at(KC_STACK_INLINE),
            .kernelStacksFailed: at(KC_STACK_FAILED) &+ stacks.lookupFailures,
            .kernelUnmatchedEnds: at(KC_UNMATCHED_END),
            .oomReclaimRetries: at(KC_RECLAIM_RETRY_ZONE),
            .oomCompactRetries: at(KC_COMPACT_RETRY),
            .kernelExtraHits: at(KC_EXTRA_HITS),
        ]
    }

    /// One ring buffer record. The layouts are bpf/kernel_events.h; a record shorter than its type
    /// says is skipped rather than read past its end.
    fileprivate func handle(_ data: UnsafeRawPointer, size: Int) {
        guard size >= MemoryLayout<ke_header>.size, let tracker else { return }
        // Millions of records a second: no retain and release of the tracker for each.
        tracker._withUnsafeGuaranteedRef { handle(data, size: size, tracker: $0) }
    }

    private func handle(_ data: UnsafeRawPointer, size: Int, tracker: Tracker) {
        guard let record = KernelRecord.decode(data, size: size) else { return }
        handled += 1
        switch record {
        case .alloc(let a, let kind, let function, let frames):
            allocation(a, kind: kind, function: function, frames: frames, tracker: tracker)
        case .free(let address, let kind):
            tables.count(kind, free: true)
            tracker.apply(.free(address: address, kind: kind, pending: false), in: space)
        case .oom(let o):
            tables.oom(oomEvent(o))
        case .reaper(let row):
            tables.reaper(row)
        case .reclaim(let kind, let pid, let comm, let durationNs, let reclaimedPages):
            tables.reclaim(kind, pid: pid, comm: KernelStacks.taskName(comm).description, durationNs: durationNs, reclaimedPages: reclaimedPages)
        case .kswapd(let nid, let wake):
            tables.kswapd(nid: nid, wake: wake)
        case .shrink(let s):
            var name = KernelRecord.string(s.name)
            if name.isEmpty { name = stacks.functionName(s.scan_objects) ?? "0x" + String(s.scan_objects, radix: 16) }
            tables.shrink(name: name, durationNs: s.duration_ns, freed: s.freed > 0 ? UInt64(s.freed) : 0)
        }
    }

    private func allocation(_ a: ke_alloc, kind: BlockKind, function: AllocFunction, frames: UnsafeBufferPointer<UInt64>, tracker: Tracker) {
        let pid = Int32(bitPattern: a.h.tgid)
        let space = self.space
        // The definitions are closures written at each call, so they stay non-escaping (no allocation).
        let stack: StackRef
        if a.stack_id >= 0 {
            stack = stacks.stack(id: a.stack_id, pid: pid, comm: a.comm) { tracker.apply(.stack($0), in: space) }
        } else {
            stack = stacks.stack(inline: frames, pid: pid, comm: a.comm) { tracker.apply(.stack($0), in: space) }
        }
        tables.count(kind, free: false)
        tracker.apply(
            .alloc(
                Allocation(
                    address: a.address, size: a.size, kind: kind, function: function, stack: stack, time: a.h.time_ns, tid: a.h.tid)),
            in: space)
    }

    private func oomEvent(_ o: ke_oom) -> OOMEventRow {
        // The kernel counts a kill (/proc/vmstat oom_kill) right before it marks the victim, and does
        // not count marking a task that was already exiting. So a count above the last one attributed
        // means this event is a kill; every event takes at most one.
        var killed: Bool?
        if let now = SystemSnapshot.oomKills(), let seen = oomKillsSeen {
            killed = now > seen
            if now > seen { oomKillsSeen = seen &+ 1 }
        }
        let f = KernelRecord.oomFacts(o, pageSize: pageSize)
        let now = monotonicNow()
        return OOMEventRow(
            timeNs: o.h.time_ns, realtimeNs: realtimeNow() &- (now &- min(o.h.time_ns, now)), pid: Int32(bitPattern: o.victim_tgid),
            tid: Int32(bitPattern: o.victim_tid), comm: KernelRecord.string(o.victim_comm), uid: f.uid,
            totalVmKB: f.totalVmKB, anonRssKB: f.anonRssKB, fileRssKB: f.fileRssKB, shmemRssKB: f.shmemRssKB,
            pgtablesKB: f.pgtablesKB, oomScoreAdj: f.oomScoreAdj, killed: killed,
            memcg: f.memcg, memcgLimitBytes: f.memcgLimitBytes, memcgUsageBytes: f.memcgUsageBytes, triggerPid: Int32(bitPattern: o.h.tgid),
            triggerComm: KernelRecord.string(o.trigger_comm), meminfo: SystemSnapshot.meminfo(), loadavg: SystemSnapshot.loadavg(),
            directReclaimsBefore: tables.reclaimCount(.direct), memcgReclaimsBefore: tables.reclaimCount(.memcg))
    }
}


/// libbpf's per-record callback; `ctx` is the source.
private let kernelRingSample: ring_buffer_sample_fn = { ctx, data, size in
    guard let ctx, let data else { return 0 }
    // The source outlives its ring (deinit frees it), so the callback borrows it without a retain.
    return Unmanaged<KernelEventSource>.fromOpaque(ctx)._withUnsafeGuaranteedRef {
        $0.handle(UnsafeRawPointer(data), size: size)
        // libbpf 1.1 has no ring_buffer__consume_n, and consume drains for as long as the kernel produces:
        // on a busy machine it would never return to the runner, which then never flushes. A negative
        // return stops it after this record, which libbpf has already counted as consumed.
        return $0.handledThisPoll >= KernelEventSource.pollBudget ? pollBudgetSpent : 0
    }
}

/// What the sample callback returns to end one poll early (not an errno libbpf itself returns).
private let pollBudgetSpent: Int32 = -Int32(ECANCELED)
