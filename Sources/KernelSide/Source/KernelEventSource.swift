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
        _ = try? poll(into: tracker)
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
        handled += 1
        let header = data.load(as: ke_header.self)
        switch UInt32(header.type) {
        case KE_ALLOC.rawValue where size >= MemoryLayout<ke_alloc>.size:
            allocation(data, size: size, tracker: tracker)
        case KE_FREE.rawValue where size >= MemoryLayout<ke_free>.size:
            let f = data.load(as: ke_free.self)
            guard let kind = Self.blockKind(f.kind) else { return }
            tables.count(kind, free: true)
            tracker.apply(.free(address: f.address, kind: kind, pending: false), in: space)
        case KE_OOM_VICTIM.rawValue where size >= MemoryLayout<ke_oom>.size:
            tables.oom(oomEvent(data.load(as: ke_oom.self)))
        case KE_OOM_REAPER.rawValue where size >= MemoryLayout<ke_reaper>.size:
            let r = data.load(as: ke_reaper.self)
            let steps: [OOMReaperRow.Step] = [.wake, .start, .finish, .skip]
            guard Int(r.step) < steps.count else { return }
            tables.reaper(OOMReaperRow(timeNs: r.h.time_ns, pid: Int32(bitPattern: r.pid), step: steps[Int(r.step)]))
        case KE_RECLAIM.rawValue where size >= MemoryLayout<ke_reclaim>.size:
            let r = data.load(as: ke_reclaim.self)
            let kind: ReclaimKind = r.kind == KE_RECLAIM_MEMCG.rawValue ? .memcg : .direct
            tables.reclaim(
                kind, pid: Int32(bitPattern: r.h.tgid), comm: KernelStacks.taskName(r.comm).description, durationNs: r.duration_ns, reclaimedPages: r.reclaimed_pages)
        case KE_KSWAPD.rawValue where size >= MemoryLayout<ke_kswapd>.size:
            let k = data.load(as: ke_kswapd.self)
            tables.kswapd(nid: k.nid, wake: k.wake != 0)
        case KE_SHRINK.rawValue where size >= MemoryLayout<ke_shrink>.size:
            let s = data.load(as: ke_shrink.self)
            var name = Self.string(s.name)
            if name.isEmpty { name = stacks.functionName(s.scan_objects) ?? "0x" + String(s.scan_objects, radix: 16) }
            tables.shrink(name: name, durationNs: s.duration_ns, freed: s.freed > 0 ? UInt64(s.freed) : 0)
        default:
            handled -= 1
        }
    }

    private func allocation(_ data: UnsafeRawPointer, size: Int, tracker: Tracker) {
        let a = data.load(as: ke_alloc.self)
        guard let kind = Self.blockKind(a.kind) else { return }
        let pid = Int32(bitPattern: a.h.tgid)
        let space = self.space
        // The definitions are closures written at each call, so they stay non-escaping (no allocation).
        let stack: StackRef
        if a.stack_id >= 0 {
            stack = stacks.stack(id: a.stack_id, pid: pid, comm: a.comm) { tracker.apply(.stack($0), in: space) }
        } else {
            let available = (size - MemoryLayout<ke_alloc>.size) / MemoryLayout<UInt64>.size
            let n = min(Int(a.nr_frames), max(available, 0))
            let frames = UnsafeBufferPointer(start: (data + MemoryLayout<ke_alloc>.size).assumingMemoryBound(to: UInt64.self), count: n)
            stack = stacks.stack(inline: frames, pid: pid, comm: a.comm) { tracker.apply(.stack($0), in: space) }
        }
        let function: AllocFunction
        switch UInt32(a.function) {
        case KE_FN_KMALLOC.rawValue: function = .kmalloc
        case KE_FN_KMEM_CACHE_ALLOC.rawValue: function = .kmemCacheAlloc
        case KE_FN_PAGE_ALLOC.rawValue: function = .pageAlloc
        case KE_FN_PERCPU_ALLOC.rawValue: function = .percpuAlloc
        default: function = .unknown
        }
        tables.count(kind, free: false)
        tracker.apply(
            .alloc(
                Allocation(
                    address: a.address, size: a.size, kind: kind, function: function, stack: stack, time: a.h.time_ns, tid: a.h.tid)),
            in: space)
    }

    private static func blockKind(_ k: UInt8) -> BlockKind? {
        switch UInt32(k) {
        case KE_KIND_SLAB.rawValue: return .kernelSlab
        case KE_KIND_PAGE.rawValue: return .kernelPage
        case KE_KIND_PERCPU.rawValue: return .kernelPercpu
        default: return nil
        }
    }

    /// A fixed-size C string field (NUL-terminated unless it fills the field).
    static func string<T>(_ field: T) -> String {
        var copy = field
        return withUnsafeBytes(of: &copy) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    private func oomEvent(_ o: ke_oom) -> OOMEventRow {
        let hasTask = o.flags & UInt32(KE_OOM_HAS_TASK) != 0
        let kbPerPage = pageSize / 1024
        // The kernel counts a kill (/proc/vmstat oom_kill) right before it marks the victim, and does
        // not count marking a task that was already exiting. So a count above the last one attributed
        // means this event is a kill; every event takes at most one.
        var killed: Bool?
        if let now = SystemSnapshot.oomKills(), let seen = oomKillsSeen {
            killed = now > seen
            if now > seen { oomKillsSeen = seen + 1 }
        }
        var memcg: String?
        var limit: UInt64?
        var usage: UInt64?
        if o.flags & UInt32(KE_OOM_HAS_MEMCG) != 0 {
            memcg = Self.memcgPath(o)
            // page_counter's "no limit" is PAGE_COUNTER_MAX, LONG_MAX in bytes divided by the page size.
            if o.memcg_max_pages < UInt64(Int64.max) / pageSize { limit = o.memcg_max_pages * pageSize }
            usage = o.memcg_usage_pages * pageSize
        }
        let now = monotonicNow()
        return OOMEventRow(
            timeNs: o.h.time_ns, realtimeNs: realtimeNow() &- (now &- min(o.h.time_ns, now)), pid: Int32(bitPattern: o.victim_tgid),
            tid: Int32(bitPattern: o.victim_tid), comm: Self.string(o.victim_comm), uid: hasTask ? o.uid : nil,
            totalVmKB: hasTask ? o.total_vm_pages * kbPerPage : nil, anonRssKB: hasTask ? o.anon_rss_pages * kbPerPage : nil,
            fileRssKB: hasTask ? o.file_rss_pages * kbPerPage : nil, shmemRssKB: hasTask ? o.shmem_rss_pages * kbPerPage : nil,
            pgtablesKB: hasTask ? o.pgtables_bytes / 1024 : nil, oomScoreAdj: hasTask ? o.oom_score_adj : nil, killed: killed,
            memcg: memcg, memcgLimitBytes: limit, memcgUsageBytes: usage, triggerPid: Int32(bitPattern: o.h.tgid),
            triggerComm: Self.string(o.trigger_comm), meminfo: SystemSnapshot.meminfo(), loadavg: SystemSnapshot.loadavg(),
            directReclaimsBefore: tables.reclaimCount(.direct), memcgReclaimsBefore: tables.reclaimCount(.memcg))
    }

    /// The cgroup path from the kernfs names the program collected leaf first. The hierarchy's root has
    /// an empty name; a path deeper than the program walks starts with "...".
    private static func memcgPath(_ o: ke_oom) -> String {
        var copy = o.memcg
        let depth = min(Int(o.memcg_depth), Int(KE_MEMCG_DEPTH))
        var names = withUnsafeBytes(of: &copy) { raw in
            (0..<depth).map { i -> String in
                let slice = raw[(i * Int(KE_MEMCG_NAME_LEN))..<((i + 1) * Int(KE_MEMCG_NAME_LEN))]
                return String(decoding: slice.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        let reachedRoot = names.last?.isEmpty ?? true
        if reachedRoot, !names.isEmpty { names.removeLast() }
        let path = "/" + names.reversed().joined(separator: "/")
        return reachedRoot ? path : "..." + path
    }
}

/// The C comm field as Swift imports it.
typealias KernelComm = (CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar)

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
