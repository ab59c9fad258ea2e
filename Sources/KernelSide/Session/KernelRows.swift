import Foundation
import GRDB
import SessionStore
import Vocabulary

/// One OOM victim (oom:mark_victim) and the system's state when it was chosen.
public struct OOMEventRow: Sendable, Equatable {
    /// CLOCK_MONOTONIC and CLOCK_REALTIME nanoseconds of the event.
    public var timeNs: UInt64
    public var realtimeNs: UInt64
    /// The victim's process (tgid) and the thread that was marked.
    public var pid: Int32
    public var tid: Int32
    public var comm: String
    public var uid: UInt32?
    public var totalVmKB: UInt64?
    public var anonRssKB: UInt64?
    public var fileRssKB: UInt64?
    public var shmemRssKB: UInt64?
    public var pgtablesKB: UInt64?
    public var oomScoreAdj: Int32?
    /// true: the OOM killer killed it; false: it was already exiting and was only marked; nil: unknown.
    public var killed: Bool?
    /// The victim's memory cgroup path within its hierarchy ("/" for the root).
    public var memcg: String?
    /// nil when the cgroup has no limit or it is unknown.
    public var memcgLimitBytes: UInt64?
    public var memcgUsageBytes: UInt64?
    /// The task that ran the OOM killer (its allocation failed).
    public var triggerPid: Int32
    public var triggerComm: String
    /// /proc/meminfo in kB, read when the event arrived.
    public var meminfo: [String: UInt64]
    /// /proc/loadavg as the kernel printed it.
    public var loadavg: String
    /// Reclaims that had completed in the session before this event.
    public var directReclaimsBefore: UInt64
    public var memcgReclaimsBefore: UInt64

    public init(
        timeNs: UInt64, realtimeNs: UInt64, pid: Int32, tid: Int32, comm: String, uid: UInt32? = nil, totalVmKB: UInt64? = nil,
        anonRssKB: UInt64? = nil, fileRssKB: UInt64? = nil, shmemRssKB: UInt64? = nil, pgtablesKB: UInt64? = nil,
        oomScoreAdj: Int32? = nil, killed: Bool? = nil, memcg: String? = nil, memcgLimitBytes: UInt64? = nil,
        memcgUsageBytes: UInt64? = nil, triggerPid: Int32, triggerComm: String, meminfo: [String: UInt64], loadavg: String,
        directReclaimsBefore: UInt64, memcgReclaimsBefore: UInt64
    ) {
        self.timeNs = timeNs
        self.realtimeNs = realtimeNs
        self.pid = pid
        self.tid = tid
        self.comm = comm
        self.uid = uid
        self.totalVmKB = totalVmKB
        self.anonRssKB = anonRssKB
        self.fileRssKB = fileRssKB
        self.shmemRssKB = shmemRssKB
        self.pgtablesKB = pgtablesKB
        self.oomScoreAdj = oomScoreAdj
        self.killed = killed
        self.memcg = memcg
        self.memcgLimitBytes = memcgLimitBytes
        self.memcgUsageBytes = memcgUsageBytes
        self.triggerPid = triggerPid
        self.triggerComm = triggerComm
        self.meminfo = meminfo
        self.loadavg = loadavg
        self.directReclaimsBefore = directReclaimsBefore
        self.memcgReclaimsBefore = memcgReclaimsBefore
    }
}

/// A step of the OOM reaper for one pid.
public struct OOMReaperRow: Sendable, Equatable {
    public enum Step: String, Sendable, Codable {
        case wake, start, finish, skip
    }

    public var timeNs: UInt64
    public var pid: Int32
    public var step: Step

    public init(timeNs: UInt64, pid: Int32, step: Step) {
        self.timeNs = timeNs
        self.pid = pid
        self.step = step
    }
}

/// Which reclaim a latency belongs to. The raw values are the session's and the JSON's spelling.
public enum ReclaimKind: String, CaseIterable, Sendable, Codable {
    /// vmscan:mm_vmscan_direct_reclaim_begin/end: an allocating task reclaiming for itself.
    case direct
    /// vmscan:mm_vmscan_memcg_reclaim_begin/end: a task over its memory cgroup's limit.
    case memcg
}

/// Running totals of one reclaim kind.
public struct ReclaimTotalRow: Sendable, Equatable {
    public var kind: ReclaimKind
    public var count: UInt64
    public var totalNs: UInt64
    public var maxNs: UInt64
    public var reclaimedPages: UInt64

    public init(kind: ReclaimKind, count: UInt64 = 0, totalNs: UInt64 = 0, maxNs: UInt64 = 0, reclaimedPages: UInt64 = 0) {
        self.kind = kind
        self.count = count
        self.totalNs = totalNs
        self.maxNs = maxNs
        self.reclaimedPages = reclaimedPages
    }
}

/// One power-of-two latency bucket: `bucket` b counts values in [2^b, 2^(b+1)) ns, and b = -1 counts 0.
public struct ReclaimBucketRow: Sendable, Equatable {
    public var kind: ReclaimKind
    public var bucket: Int
    public var count: UInt64

    public init(kind: ReclaimKind, bucket: Int, count: UInt64) {
        self.kind = kind
        self.bucket = bucket
        self.count = count
    }

    /// The bucket a value falls in.
    public static func bucket(for value: UInt64) -> Int { value == 0 ? -1 : 63 - value.leadingZeroBitCount }

    /// The bucket's inclusive lower and exclusive upper bound (0 and 1 for the zero bucket).
    public static func bounds(of bucket: Int) -> (low: UInt64, high: UInt64) {
        if bucket < 0 { return (0, 1) }
        let low = UInt64(1) << UInt64(min(bucket, 63))
        return (low, bucket >= 63 ? UInt64.max : low << 1)
    }
}

/// A process that stalled in reclaim, with how often and how long.
public struct ReclaimStallerRow: Sendable, Equatable {
    public var kind: ReclaimKind
    public var pid: Int32
    public var comm: String
    public var count: UInt64
    public var totalNs: UInt64
    public var maxNs: UInt64

    public init(kind: ReclaimKind, pid: Int32, comm: String, count: UInt64, totalNs: UInt64, maxNs: UInt64) {
        self.kind = kind
        self.pid = pid
        self.comm = comm
        self.count = count
        self.totalNs = totalNs
        self.maxNs = maxNs
    }
}

/// kswapd's wakes and sleeps on one NUMA node.
public struct KswapdRow: Sendable, Equatable {
    public var nid: Int32
    public var wakes: UInt64
    public var sleeps: UInt64

    public init(nid: Int32, wakes: UInt64 = 0, sleeps: UInt64 = 0) {
        self.nid = nid
        self.wakes = wakes
        self.sleeps = sleeps
    }
}

/// Time spent in one shrinker (vmscan:mm_shrink_slab_start/end).
public struct ShrinkerRow: Sendable, Equatable {
    public var name: String
    public var calls: UInt64
    public var totalNs: UInt64
    public var maxNs: UInt64
    /// Objects the shrinker reported freed.
    public var freed: UInt64

    public init(name: String, calls: UInt64 = 0, totalNs: UInt64 = 0, maxNs: UInt64 = 0, freed: UInt64 = 0) {
        self.name = name
        self.calls = calls
        self.totalNs = totalNs
        self.maxNs = maxNs
        self.freed = freed
    }
}

/// What one flush interval saw in the kernel, and memory at its end (like vmscan.bt's columns).
public struct KernelIntervalRow: Sendable, Equatable {
    /// CLOCK_MONOTONIC at the end of the interval.
    public var timeNs: UInt64
    public var slabAllocs: UInt64 = 0
    public var slabFrees: UInt64 = 0
    public var pageAllocs: UInt64 = 0
    public var pageFrees: UInt64 = 0
    public var percpuAllocs: UInt64 = 0
    public var percpuFrees: UInt64 = 0
    public var directReclaims: UInt64 = 0
    public var directReclaimNs: UInt64 = 0
    public var memcgReclaims: UInt64 = 0
    public var memcgReclaimNs: UInt64 = 0
    public var kswapdWakes: UInt64 = 0
    public var shrinkSlabNs: UInt64 = 0
    public var writepages: UInt64 = 0
    public var memFreeKB: UInt64?
    public var slabKB: UInt64?
    public var sUnreclaimKB: UInt64?
    public var anonKB: UInt64?

    public init(timeNs: UInt64) { self.timeNs = timeNs }
}

/// A tracepoint the collector tried to attach, and what became of it.
public struct TracepointRow: Sendable, Equatable {
    public enum Status: String, Sendable, Codable {
        case attached
        /// Not on this kernel.
        case missing
        /// An older name of a tracepoint that is attached (the `_node` variants before 6.1).
        case replaced
        case failed
    }

    /// "category:name", as in tracefs.
    public var name: String
    public var status: Status
    public var detail: String?

    public init(name: String, status: Status, detail: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
    }
}

/// One flush's worth of the kernel tables. Running totals replace the stored rows; events and intervals
/// are appended.
public struct KernelRows: SessionRows, Equatable {
    public var oomEvents: [OOMEventRow] = []
    public var reaper: [OOMReaperRow] = []
    public var reclaimTotals: [ReclaimTotalRow] = []
    public var reclaimBuckets: [ReclaimBucketRow] = []
    public var stallers: [ReclaimStallerRow] = []
    public var kswapd: [KswapdRow] = []
    public var shrinkers: [ShrinkerRow] = []
    public var intervals: [KernelIntervalRow] = []
    public var tracepoints: [TracepointRow] = []

    public init() {}

    public func write(to db: Database) throws {
        for e in oomEvents {
            let meminfo = String(decoding: try JSONEncoder.sorted.encode(e.meminfo), as: UTF8.self)
            try db.execute(
                sql: """
                    INSERT INTO oom_events (time_ns, realtime_ns, pid, tid, comm, uid, total_vm_kb, anon_rss_kb, file_rss_kb,
                        shmem_rss_kb, pgtables_kb, oom_score_adj, killed, memcg, memcg_limit_bytes, memcg_usage_bytes, trigger_pid,
                        trigger_comm, meminfo, loadavg, direct_reclaims_before, memcg_reclaims_before)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    sqlInt(e.timeNs), sqlInt(e.realtimeNs), e.pid, e.tid, e.comm, e.uid.map { Int64($0) }, e.totalVmKB.map(sqlInt),
                    e.anonRssKB.map(sqlInt), e.fileRssKB.map(sqlInt), e.shmemRssKB.map(sqlInt), e.pgtablesKB.map(sqlInt), e.oomScoreAdj,
                    e.killed, e.memcg, e.memcgLimitBytes.map(sqlInt), e.memcgUsageBytes.map(sqlInt), e.triggerPid, e.triggerComm,
                    meminfo, e.loadavg, sqlInt(e.directReclaimsBefore), sqlInt(e.memcgReclaimsBefore),
                ])
        }
        for r in reaper {
            try db.execute(
                sql: "INSERT INTO oom_reaper (time_ns, pid, step) VALUES (?, ?, ?)", arguments: [sqlInt(r.timeNs), r.pid, r.step.rawValue])
        }
        for t in reclaimTotals {
            try db.execute(
                sql: "INSERT OR REPLACE INTO reclaim_totals (kind, count, total_ns, max_ns, reclaimed_pages) VALUES (?, ?, ?, ?, ?)",
                arguments: [t.kind.rawValue, sqlInt(t.count), sqlInt(t.totalNs), sqlInt(t.maxNs), sqlInt(t.reclaimedPages)])
        }
        for b in reclaimBuckets {
            try db.execute(
                sql: "INSERT OR REPLACE INTO reclaim_histogram (kind, bucket, count) VALUES (?, ?, ?)",
                arguments: [b.kind.rawValue, b.bucket, sqlInt(b.count)])
        }
        for s in stallers {
            try db.execute(
                sql: "INSERT OR REPLACE INTO reclaim_stallers (kind, pid, comm, count, total_ns, max_ns) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [s.kind.rawValue, s.pid, s.comm, sqlInt(s.count), sqlInt(s.totalNs), sqlInt(s.maxNs)])
        }
        for k in kswapd {
            try db.execute(
                sql: "INSERT OR REPLACE INTO kswapd (nid, wakes, sleeps) VALUES (?, ?, ?)", arguments: [k.nid, sqlInt(k.wakes), sqlInt(k.sleeps)])
        }
        for s in shrinkers {
            try db.execute(
                sql: "INSERT OR REPLACE INTO shrinkers (name, calls, total_ns, max_ns, freed) VALUES (?, ?, ?, ?, ?)",
                arguments: [s.name, sqlInt(s.calls), sqlInt(s.totalNs), sqlInt(s.maxNs), sqlInt(s.freed)])
        }
        for i in intervals {
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO kernel_intervals (time_ns, slab_allocs, slab_frees, page_allocs, page_frees, percpu_allocs,
                        percpu_frees, direct_reclaims, direct_reclaim_ns, memcg_reclaims, memcg_reclaim_ns, kswapd_wakes, shrink_slab_ns,
                        writepages, mem_free_kb, slab_kb, sunreclaim_kb, anon_kb)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    sqlInt(i.timeNs), sqlInt(i.slabAllocs), sqlInt(i.slabFrees), sqlInt(i.pageAllocs), sqlInt(i.pageFrees),
                    sqlInt(i.percpuAllocs), sqlInt(i.percpuFrees), sqlInt(i.directReclaims), sqlInt(i.directReclaimNs),
                    sqlInt(i.memcgReclaims), sqlInt(i.memcgReclaimNs), sqlInt(i.kswapdWakes), sqlInt(i.shrinkSlabNs), sqlInt(i.writepages),
                    i.memFreeKB.map(sqlInt), i.slabKB.map(sqlInt), i.sUnreclaimKB.map(sqlInt), i.anonKB.map(sqlInt),
                ])
        }
        for t in tracepoints {
            try db.execute(
                sql: "INSERT OR REPLACE INTO tracepoints (name, status, detail) VALUES (?, ?, ?)", arguments: [t.name, t.status.rawValue, t.detail])
        }
    }
}

extension JSONEncoder {
    /// Sorted keys, so a stored JSON object reads the same every time.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
