import Foundation
import KernelSession
import SessionStore
import Vocabulary

/// The kernel tables of one collection: running reclaim, kswapd and shrinker totals, OOM events, and the
/// current interval's counts. Each flush takes the rows that changed since the previous one.
final class KernelTables {
    private var totals: [ReclaimKind: ReclaimTotalRow] = [:]
    private var buckets: [ReclaimKind: [Int: UInt64]] = [:]
    private var stallers: [StallerKey: ReclaimStallerRow] = [:]
    private var kswapd: [Int32: KswapdRow] = [:]
    private var shrinkers: [String: ShrinkerRow] = [:]

    private struct StallerKey: Hashable {
        var kind: ReclaimKind
        var pid: Int32
    }

    private var dirtyTotals: Set<ReclaimKind> = []
    private var dirtyBuckets: Set<BucketKey> = []
    private var dirtyStallers: Set<StallerKey> = []
    private var dirtyNodes: Set<Int32> = []
    private var dirtyShrinkers: Set<String> = []
    private var pending = KernelRows()
    private var interval = KernelIntervalRow(timeNs: 0)

    private struct BucketKey: Hashable {
        var kind: ReclaimKind
        var bucket: Int
    }

    /// Reclaims completed so far, by kind.
    func reclaimCount(_ kind: ReclaimKind) -> UInt64 { totals[kind]?.count ?? 0 }

    func reclaim(_ kind: ReclaimKind, pid: Int32, comm: String, durationNs: UInt64, reclaimedPages: UInt64) {
        var t = totals[kind] ?? ReclaimTotalRow(kind: kind)
        Self.add(durationNs, count: &t.count, total: &t.totalNs, max: &t.maxNs)
        t.reclaimedPages &+= reclaimedPages
        totals[kind] = t
        dirtyTotals.insert(kind)

        let b = ReclaimBucketRow.bucket(for: durationNs)
        buckets[kind, default: [:]][b, default: 0] &+= 1
        dirtyBuckets.insert(BucketKey(kind: kind, bucket: b))

        let key = StallerKey(kind: kind, pid: pid)
        var s = stallers[key] ?? ReclaimStallerRow(kind: kind, pid: pid, comm: comm, count: 0, totalNs: 0, maxNs: 0)
        s.comm = comm
        Self.add(durationNs, count: &s.count, total: &s.totalNs, max: &s.maxNs)
        stallers[key] = s
        dirtyStallers.insert(key)

        switch kind {
        case .direct:
            interval.directReclaims &+= 1
            interval.directReclaimNs &+= durationNs
        case .memcg:
            interval.memcgReclaims &+= 1
            interval.memcgReclaimNs &+= durationNs
        }
    }

    func kswapd(nid: Int32, wake: Bool) {
        var k = kswapd[nid] ?? KswapdRow(nid: nid)
        if wake {
            k.wakes &+= 1
            interval.kswapdWakes &+= 1
        } else {
            k.sleeps &+= 1
        }
        kswapd[nid] = k
        dirtyNodes.insert(nid)
    }

    func shrink(name: String, durationNs: UInt64, freed: UInt64) {
        var s = shrinkers[name] ?? ShrinkerRow(name: name)
        Self.add(durationNs, count: &s.calls, total: &s.totalNs, max: &s.maxNs)
        s.freed &+= freed
        shrinkers[name] = s
        dirtyShrinkers.insert(name)
        interval.shrinkSlabNs &+= durationNs
    }

    /// One more latency into a count, a total and a maximum.
    private static func add(_ ns: UInt64, count: inout UInt64, total: inout UInt64, max maximum: inout UInt64) {
        count &+= 1
        total &+= ns
        maximum = max(maximum, ns)
    }

    func oom(_ row: OOMEventRow) { pending.oomEvents.append(row) }

    func reaper(_ row: OOMReaperRow) { pending.reaper.append(row) }

    func tracepoints(_ rows: [TracepointRow]) { pending.tracepoints += rows }

    /// Counts one allocation or free of a kind in the current interval.
    func count(_ kind: BlockKind, free: Bool) {
        switch (kind, free) {
        case (.kernelSlab, false): interval.slabAllocs &+= 1
        case (.kernelSlab, true): interval.slabFrees &+= 1
        case (.kernelPage, false): interval.pageAllocs &+= 1
        case (.kernelPage, true): interval.pageFrees &+= 1
        case (.kernelPercpu, false): interval.percpuAllocs &+= 1
        case (.kernelPercpu, true): interval.percpuFrees &+= 1
        default: break
        }
    }

    /// Everything that changed since the last call; closes the interval at `time` with `writepages` and
    /// the memory figures of `meminfo`.
    func take(at time: UInt64, writepages: UInt64, meminfo: [String: UInt64]) -> KernelRows {
        var rows = pending
        pending = KernelRows()
        rows.reclaimTotals = dirtyTotals.compactMap { totals[$0] }
        rows.reclaimBuckets = dirtyBuckets.map { ReclaimBucketRow(kind: $0.kind, bucket: $0.bucket, count: buckets[$0.kind]?[$0.bucket] ?? 0) }
        rows.stallers = dirtyStallers.compactMap { stallers[$0] }
        rows.kswapd = dirtyNodes.compactMap { kswapd[$0] }
        rows.shrinkers = dirtyShrinkers.compactMap { shrinkers[$0] }
        dirtyTotals.removeAll()
        dirtyBuckets.removeAll()
        dirtyStallers.removeAll()
        dirtyNodes.removeAll()
        dirtyShrinkers.removeAll()

        var i = interval
        i.timeNs = time
        i.writepages = writepages
        i.memFreeKB = meminfo["MemFree"]
        i.slabKB = meminfo["Slab"]
        i.sUnreclaimKB = meminfo["SUnreclaim"]
        i.anonKB = meminfo["AnonPages"]
        rows.intervals = [i]
        interval = KernelIntervalRow(timeNs: 0)
        return rows
    }
}
