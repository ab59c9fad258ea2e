import Foundation
import KernelSession
import SessionStore
import Vocabulary

/// `leakreport reclaim`: how long tasks stalled in direct and memcg reclaim (log2 histograms and the
/// processes that stalled most), kswapd's activity, time per shrinker, and the per-interval trend.
public struct ReclaimReport: Sendable {
    public struct Kind: Sendable, Equatable {
        public var totals: ReclaimTotalRow
        public var histogram: [ReclaimBucketRow]
        public var top: [ReclaimStallerRow]
    }

    public var info: SessionInfo
    public var kinds: [ReclaimKind: Kind]
    public var kswapd: [KswapdRow]
    public var shrinkers: [ShrinkerRow]
    public var intervals: [KernelIntervalRow]

    public var kswapdWakes: UInt64 { kswapd.reduce(0) { $0 &+ $1.wakes } }
    public var kswapdSleeps: UInt64 { kswapd.reduce(0) { $0 &+ $1.sleeps } }

    /// `top`: how many stalling processes to list per kind.
    public static func build(_ reader: SessionReader, top: Int = 10) throws(SessionError) -> ReclaimReport {
        let totals = try reader.reclaimTotals()
        var kinds: [ReclaimKind: Kind] = [:]
        for k in ReclaimKind.allCases {
            kinds[k] = Kind(
                totals: totals[k] ?? ReclaimTotalRow(kind: k), histogram: try reader.reclaimHistogram(k),
                top: try reader.reclaimStallers(k, limit: max(top, 0)))
        }
        return ReclaimReport(
            info: reader.info, kinds: kinds, kswapd: try reader.kswapd(), shrinkers: try reader.shrinkers(),
            intervals: try reader.kernelIntervals())
    }
}

/// The text form: bpftrace-style histograms, the top stallers, kswapd, shrinkers, and optionally the
/// per-interval columns (like vmscan.bt's per-second lines).
public enum ReclaimTextRenderer {
    public static func render(_ r: ReclaimReport, intervals: Bool = false) -> String {
        var out = Formatting.sessionLine(r.info) + "\n"
        if r.info.mode != .kernel { out += "not a kernel session (leakcollect --kernel records reclaim)\n" }
        for kind in ReclaimKind.allCases {
            guard let k = r.kinds[kind] else { continue }
            let t = k.totals
            out += "\n\(title(kind)): \(t.count) stall\(t.count == 1 ? "" : "s")"
            if t.count > 0 {
                out += ", \(ms(t.totalNs)) total, max \(ms(t.maxNs)), \(t.reclaimedPages) pages reclaimed"
            }
            out += "\n"
            if !k.histogram.isEmpty {
                out += "@\(kind.rawValue)_reclaim_ns:\n"
                out += Log2Histogram.render(Dictionary(uniqueKeysWithValues: k.histogram.map { ($0.bucket, $0.count) }))
            }
            if !k.top.isEmpty {
                var table = TextTable([("PID", .right), ("COMM", .left), ("STALLS", .right), ("TOTAL_MS", .right), ("MAX_MS", .right)])
                for s in k.top { table.add([String(s.pid), s.comm, String(s.count), msNumber(s.totalNs), msNumber(s.maxNs)]) }
                out += table.render()
            }
        }
        out += "\nkswapd: \(r.kswapdWakes) wakes, \(r.kswapdSleeps) sleeps"
        if r.kswapd.count > 1 { out += " (" + r.kswapd.map { "node \($0.nid): \($0.wakes)/\($0.sleeps)" }.joined(separator: ", ") + ")" }
        out += "\n"
        if !r.shrinkers.isEmpty {
            out += "\nshrinkers (time in shrink_slab):\n"
            var table = TextTable([("SHRINKER", .left), ("CALLS", .right), ("TOTAL_MS", .right), ("MAX_MS", .right), ("FREED", .right)])
            for s in r.shrinkers { table.add([s.name, String(s.calls), msNumber(s.totalNs), msNumber(s.maxNs), String(s.freed)]) }
            out += table.render()
        }
        if intervals && !r.intervals.isEmpty {
            out += "\nper interval:\n"
            var table = TextTable([
                ("TIME_S", .right), ("S-SLABms", .right), ("D-RECLAIMms", .right), ("M-RECLAIMms", .right), ("KSWAPD", .right),
                ("WRITEPAGE", .right), ("SLAB_KB", .right), ("FREE_KB", .right),
            ])
            for i in r.intervals {
                table.add([
                    String(format: "%.1f", Double(i.timeNs &- min(i.timeNs, r.info.startMonotonicNs)) / 1e9), msNumber(i.shrinkSlabNs),
                    msNumber(i.directReclaimNs), msNumber(i.memcgReclaimNs), String(i.kswapdWakes), String(i.writepages),
                    i.slabKB.map(String.init) ?? "-", i.memFreeKB.map(String.init) ?? "-",
                ])
            }
            out += table.render()
        }
        return out
    }

    static func title(_ k: ReclaimKind) -> String {
        switch k {
        case .direct: return "direct reclaim"
        case .memcg: return "memcg reclaim"
        }
    }

    static func ms(_ ns: UInt64) -> String { msNumber(ns) + " ms" }

    static func msNumber(_ ns: UInt64) -> String { String(format: "%.3f", Double(ns) / 1e6) }
}

/// `leakreport reclaim --format json`. Stallers, kswapd nodes, shrinkers and intervals are their
/// tables' rows, whose column names are the JSON field names (one definition each, in KernelSession);
/// a latency is its `reclaim_totals` row with the histogram and the top stallers beside it.
public struct ReclaimJSON: Codable, Equatable {
    /// One histogram bucket as bounds: latencies in [low_ns, high_ns).
    public struct Bucket: Codable, Equatable {
        public var lowNs: UInt64
        public var highNs: UInt64
        public var count: UInt64
        enum CodingKeys: String, CodingKey {
            case count
            case lowNs = "low_ns"
            case highNs = "high_ns"
        }
    }

    /// What a kind of reclaim adds to its totals row: its histogram and the processes that stalled most.
    public struct Distribution: Codable, Equatable {
        public var histogram: [Bucket]
        public var top: [ReclaimStallerRow]
    }

    /// One kind of reclaim: its totals row's fields and its distribution.
    public typealias Latency = RowJSON<ReclaimTotalRow, Distribution>

    /// kswapd over every node, and per node.
    public struct Kswapd: Codable, Equatable {
        public var wakes: UInt64
        public var sleeps: UInt64
        public var nodes: [KswapdRow]
    }

    public var direct: Latency
    public var memcg: Latency
    public var kswapd: Kswapd
    public var shrinkers: [ShrinkerRow]
    public var intervals: [KernelIntervalRow]

    public init(_ r: ReclaimReport) {
        func latency(_ k: ReclaimKind) -> Latency {
            let kind = r.kinds[k] ?? ReclaimReport.Kind(totals: ReclaimTotalRow(kind: k), histogram: [], top: [])
            let buckets = kind.histogram.map { b in
                let (lo, hi) = ReclaimBucketRow.bounds(of: b.bucket)
                return Bucket(lowNs: lo, highNs: hi, count: b.count)
            }
            return Latency(kind.totals, Distribution(histogram: buckets, top: kind.top))
        }
        direct = latency(.direct)
        memcg = latency(.memcg)
        kswapd = Kswapd(wakes: r.kswapdWakes, sleeps: r.kswapdSleeps, nodes: r.kswapd)
        shrinkers = r.shrinkers
        intervals = r.intervals
    }

    public func encoded() -> String { ReportJSON.encode(self) }
}
