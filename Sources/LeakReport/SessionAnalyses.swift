import Foundation
import ReportFormats
import SessionStore
import Vocabulary

/// Why an analysis cannot answer what it was asked; one line at the CLI edge.
public struct AnalysisError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The analyses of ReportFormats fed with what the collector recorded beside the profile: its exact
/// peaks, its per-stack temporaries and lifetime histograms.
public enum SessionAnalyses {
    /// The peak of the kinds loaded (every kind together when none was chosen, else the one chosen), each
    /// kind's own peak, and what every stack held at that moment.
    public static func peak(_ sp: SessionProfile, peaks: [PeakDimension: PeakRow], kinds: Set<BlockKind>?, top: Int?) -> PeakReport {
        // One kind asked for: its own peak. Several or all: the peak over every kind, the moment the
        // process held the most.
        let dimension: PeakDimension = kinds.flatMap { $0.count == 1 ? $0.first.map(PeakDimension.kind) : nil } ?? .all
        let name = dimension == .all ? kindsLabel(sp) : dimension.name
        let row = peaks[dimension]
        let held: [(bytes: UInt64, blocks: UInt64)] = sp.totals.map { t in row.map { t.atPeak(of: dimension, epoch: $0.epoch) } ?? (t.bytes, t.blocks) }
        // Only the stacks the report shows need their frames.
        var named = sp
        named.fillFrames(top: top) { held[$0].bytes }
        var atPeak = named.profile
        for i in atPeak.stacks.indices {
            let held = held[i]
            atPeak.stacks[i].inUseBytes = held.bytes
            atPeak.stacks[i].inUseBlocks = held.blocks
            atPeak.stacks[i].series = []
        }
        let total = PeakReport.KindPeak(
            kind: name, timeNs: row.map { sp.sinceStart($0.timeNs) } ?? 0, bytes: row?.bytes ?? 0, blocks: row?.blocks ?? 0)
        let each = peaks.values.compactMap { p -> PeakReport.KindPeak? in
            guard case .kind(let k) = p.dimension, kinds?.contains(k) ?? true, dimension != p.dimension else { return nil }
            return PeakReport.KindPeak(kind: k.rawValue, timeNs: sp.sinceStart(p.timeNs), bytes: p.bytes, blocks: p.blocks)
        }
        // One kind alone would only repeat the total.
        let kindsSeen = peaks.keys.filter { $0 != .all }.count
        let shown = kindsSeen > 1 ? each : []
        let now = sp.profile.stacks.reduce(UInt64(0)) { $0 &+ $1.inUseBytes } &+ sp.suppressedBytes
        return PeakReport(total: total, kinds: shown.sorted { $0.kind < $1.kind }, nowBytes: now, atPeak: atPeak, top: top)
    }

    /// "heap and mmap": the kinds a process session holds, as the peak line names them.
    static func kindsLabel(_ sp: SessionProfile) -> String {
        let kinds = Set(sp.totals.map(\.kind)).map(\.rawValue).sorted()
        guard let last = kinds.last else { return "all kinds" }
        return kinds.count == 1 ? last : kinds.dropLast().joined(separator: ", ") + " and " + last
    }

    /// Temporary allocations by stack: with no threshold, heaptrack's (freed before the same thread's
    /// next allocation), as the collector counted them; with one, the blocks whose lifetime fell in the
    /// collector's lifetime histogram below it. The histogram's buckets end at 1, 2, 5 ms, 10, 20, 50 ms,
    /// …, so a threshold between two bounds counts up to the lower one, and the report says which.
    public static func churn(_ sp: SessionProfile, shorterThanNs: UInt64?, top: Int?) throws(AnalysisError) -> ChurnReport {
        var threshold = "freed before the same thread's next allocation"
        var buckets = 0
        if let limit = shorterThanNs {
            let bounds = LifetimeHistogram.boundsNs
            guard let first = bounds.first, limit >= first else {
                throw AnalysisError("--shorter-than must be at least 1ms: the session records lifetimes in buckets from 1 ms up")
            }
            buckets = bounds.lastIndex { $0 <= limit }.map { $0 + 1 } ?? 0
            let bound = bounds[buckets - 1]
            threshold = "shorter than \(duration(bound))" + (bound != limit ? " (the largest bucket bound up to \(duration(limit)))" : "")
        }
        var total: UInt64 = 0
        let counts = sp.totals.map { t -> (blocks: UInt64, bytes: UInt64) in
            total +|= t.totalBlocks
            guard shorterThanNs != nil else { return (t.temporaryBlocks, t.temporaryBytes) }
            var blocks: UInt64 = 0, bytes: UInt64 = 0
            if let h = t.lifetimes {
                for b in 0..<min(buckets, h.counts.count) {
                    blocks +|= h.counts[b]
                    bytes +|= h.bytes[b]
                }
            }
            return (blocks, bytes)
        }
        // Only the stacks the report shows need their frames.
        var named = sp
        named.fillFrames(top: top) { counts[$0].blocks }
        let stacks = named.profile.stacks.indices.map { i -> ChurnReport.Stack in
            let s = named.profile.stacks[i]
            return ChurnReport.Stack(
                frames: s.frames, kind: s.kind, temporaryBlocks: counts[i].blocks, temporaryBytes: counts[i].bytes, allocatedBlocks: sp.totals[i].totalBlocks)
        }
        return ChurnReport(threshold: threshold, totalAllocations: total, stacks: stacks, modules: sp.profile.modules, top: top)
    }

    /// "1 ms", "200 ms", "5 s": a histogram bound as a person writes it.
    static func duration(_ ns: UInt64) -> String {
        if ns >= 1_000_000_000, ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000) s" }
        if ns % 1_000_000 == 0 { return "\(ns / 1_000_000) ms" }
        return "\(ns) ns"
    }

    /// Checks `--from`/`--to` against the session: both within it, the first before the second.
    public static func checkMoments(from: UInt64, to: UInt64, in sp: SessionProfile) throws(AnalysisError) {
        let span = sp.profile.durationNs
        for (name, t) in [("--from", from), ("--to", to)] where t > span {
            throw AnalysisError("\(name) \(ByteFormat.duration(ns: t)) is after the session's end (it covers \(ByteFormat.duration(ns: span)))")
        }
        guard from < to else { throw AnalysisError("--from must be before --to") }
    }
}
