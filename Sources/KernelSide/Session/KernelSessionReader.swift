import Foundation
import GRDB
import SessionStore
import Vocabulary

/// Reads the kernel side's tables. In a session of another mode they are empty.
extension SessionReader {
    /// OOM victims in time order.
    public func oomEvents() throws(SessionError) -> [OOMEventRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM oom_events ORDER BY time_ns, id").map { r in
                let meminfoText: String = r["meminfo"] ?? "{}"
                let meminfo = (try? JSONDecoder().decode([String: UInt64].self, from: Data(meminfoText.utf8))) ?? [:]
                let uid: Int64? = r["uid"]
                return OOMEventRow(
                    timeNs: sqlUInt(r["time_ns"] ?? 0), realtimeNs: sqlUInt(r["realtime_ns"] ?? 0), pid: r["pid"] ?? 0, tid: r["tid"] ?? 0,
                    comm: r["comm"] ?? "", uid: uid.map { UInt32(truncatingIfNeeded: $0) }, totalVmKB: Self.unsigned(r["total_vm_kb"]),
                    anonRssKB: Self.unsigned(r["anon_rss_kb"]), fileRssKB: Self.unsigned(r["file_rss_kb"]),
                    shmemRssKB: Self.unsigned(r["shmem_rss_kb"]), pgtablesKB: Self.unsigned(r["pgtables_kb"]), oomScoreAdj: r["oom_score_adj"],
                    killed: r["killed"], memcg: r["memcg"], memcgLimitBytes: Self.unsigned(r["memcg_limit_bytes"]),
                    memcgUsageBytes: Self.unsigned(r["memcg_usage_bytes"]), triggerPid: r["trigger_pid"] ?? 0,
                    triggerComm: r["trigger_comm"] ?? "", meminfo: meminfo, loadavg: r["loadavg"] ?? "",
                    directReclaimsBefore: sqlUInt(r["direct_reclaims_before"] ?? 0), memcgReclaimsBefore: sqlUInt(r["memcg_reclaims_before"] ?? 0))
            }
        }
    }

    /// The OOM reaper's steps in time order.
    public func oomReaperSteps() throws(SessionError) -> [OOMReaperRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM oom_reaper ORDER BY time_ns").compactMap { r in
                guard let s: String = r["step"], let step = OOMReaperRow.Step(rawValue: s) else { return nil }
                return OOMReaperRow(timeNs: sqlUInt(r["time_ns"] ?? 0), pid: r["pid"] ?? 0, step: step)
            }
        }
    }

    /// Totals per reclaim kind; a kind that never happened has a row of zeros.
    public func reclaimTotals() throws(SessionError) -> [ReclaimKind: ReclaimTotalRow] {
        try read { db in
            var out: [ReclaimKind: ReclaimTotalRow] = [:]
            for k in ReclaimKind.allCases { out[k] = ReclaimTotalRow(kind: k) }
            for r in try Row.fetchAll(db, sql: "SELECT * FROM reclaim_totals") {
                guard let k: String = r["kind"], let kind = ReclaimKind(rawValue: k) else { continue }
                out[kind] = ReclaimTotalRow(
                    kind: kind, count: sqlUInt(r["count"] ?? 0), totalNs: sqlUInt(r["total_ns"] ?? 0), maxNs: sqlUInt(r["max_ns"] ?? 0),
                    reclaimedPages: sqlUInt(r["reclaimed_pages"] ?? 0))
            }
            return out
        }
    }

    /// The non-empty latency buckets of one reclaim kind, lowest first.
    public func reclaimHistogram(_ kind: ReclaimKind) throws(SessionError) -> [ReclaimBucketRow] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT bucket, count FROM reclaim_histogram WHERE kind = ? AND count > 0 ORDER BY bucket", arguments: [kind.rawValue]
            ).map { r in ReclaimBucketRow(kind: kind, bucket: r["bucket"] ?? 0, count: sqlUInt(r["count"] ?? 0)) }
        }
    }

    /// The processes that stalled longest in one kind of reclaim, longest total first.
    public func reclaimStallers(_ kind: ReclaimKind, limit: Int) throws(SessionError) -> [ReclaimStallerRow] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM reclaim_stallers WHERE kind = ? ORDER BY total_ns DESC, pid LIMIT ?", arguments: [kind.rawValue, limit]
            ).map { r in
                ReclaimStallerRow(
                    kind: kind, pid: r["pid"] ?? 0, comm: r["comm"] ?? "", count: sqlUInt(r["count"] ?? 0), totalNs: sqlUInt(r["total_ns"] ?? 0),
                    maxNs: sqlUInt(r["max_ns"] ?? 0))
            }
        }
    }

    /// kswapd per node.
    public func kswapd() throws(SessionError) -> [KswapdRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM kswapd ORDER BY nid").map { r in
                KswapdRow(nid: r["nid"] ?? 0, wakes: sqlUInt(r["wakes"] ?? 0), sleeps: sqlUInt(r["sleeps"] ?? 0))
            }
        }
    }

    /// Shrinkers, longest total time first.
    public func shrinkers() throws(SessionError) -> [ShrinkerRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM shrinkers ORDER BY total_ns DESC, name").map { r in
                ShrinkerRow(
                    name: r["name"] ?? "", calls: sqlUInt(r["calls"] ?? 0), totalNs: sqlUInt(r["total_ns"] ?? 0),
                    maxNs: sqlUInt(r["max_ns"] ?? 0), freed: sqlUInt(r["freed"] ?? 0))
            }
        }
    }

    /// Per-interval kernel snapshots in time order.
    public func kernelIntervals() throws(SessionError) -> [KernelIntervalRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM kernel_intervals ORDER BY time_ns").map { r in
                var i = KernelIntervalRow(timeNs: sqlUInt(r["time_ns"] ?? 0))
                i.slabAllocs = sqlUInt(r["slab_allocs"] ?? 0)
                i.slabFrees = sqlUInt(r["slab_frees"] ?? 0)
                i.pageAllocs = sqlUInt(r["page_allocs"] ?? 0)
                i.pageFrees = sqlUInt(r["page_frees"] ?? 0)
                i.percpuAllocs = sqlUInt(r["percpu_allocs"] ?? 0)
                i.percpuFrees = sqlUInt(r["percpu_frees"] ?? 0)
                i.directReclaims = sqlUInt(r["direct_reclaims"] ?? 0)
                i.directReclaimNs = sqlUInt(r["direct_reclaim_ns"] ?? 0)
                i.memcgReclaims = sqlUInt(r["memcg_reclaims"] ?? 0)
                i.memcgReclaimNs = sqlUInt(r["memcg_reclaim_ns"] ?? 0)
                i.kswapdWakes = sqlUInt(r["kswapd_wakes"] ?? 0)
                i.shrinkSlabNs = sqlUInt(r["shrink_slab_ns"] ?? 0)
                i.writepages = sqlUInt(r["writepages"] ?? 0)
                i.memFreeKB = Self.unsigned(r["mem_free_kb"])
                i.slabKB = Self.unsigned(r["slab_kb"])
                i.sUnreclaimKB = Self.unsigned(r["sunreclaim_kb"])
                i.anonKB = Self.unsigned(r["anon_kb"])
                return i
            }
        }
    }

    /// Every tracepoint the collector tried, by name.
    public func tracepoints() throws(SessionError) -> [TracepointRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM tracepoints ORDER BY name").compactMap { r in
                guard let n: String = r["name"], let s: String = r["status"], let status = TracepointRow.Status(rawValue: s) else { return nil }
                return TracepointRow(name: n, status: status, detail: r["detail"])
            }
        }
    }

    private static func unsigned(_ v: Int64?) -> UInt64? { v.map(sqlUInt) }
}
