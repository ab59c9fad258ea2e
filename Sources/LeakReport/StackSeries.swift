import ReportFormats
import SessionStore
import Vocabulary

/// Per-stack series of outstanding bytes from a session's interval history, for the growth score.
public enum StackSeries {
    /// Each key's outstanding bytes at each (sampled) interval's end, from the interval it first
    /// appeared in; an interval that does not name a stack kept its previous value. Times are ns since
    /// `start`. A history longer than `maxPoints` is sampled at evenly spaced intervals, the last kept.
    public static func series(of keys: [LiveAggregateKey], history: [IntervalHistory], start: UInt64, maxPoints: Int = 120) -> [[SeriesPoint]] {
        var h = StackHistory()
        for i in history { h.append(i) }
        let sampled = h.sampledIntervals(maxPoints: maxPoints)
        return keys.map { h.series(of: $0, start: start, sampled: sampled) }
    }

    /// Series added up by time (stacks merged because they read the same).
    public static func sum(_ series: [[SeriesPoint]]) -> [SeriesPoint] {
        if series.count == 1 { return series[0] }
        var byTime: [UInt64: UInt64] = [:]
        for s in series { for p in s { byTime[p.timeNs, default: 0] &+= p.bytes } }
        return byTime.keys.sorted().map { SeriesPoint(timeNs: $0, bytes: byTime[$0] ?? 0) }
    }
}

/// A session's interval history held as each stack's changes: appended to interval by interval (a live
/// view adds only the intervals written since its last refresh), and sampled into any stack's series
/// without walking the intervals again. The one definition of how a series is sampled.
public struct StackHistory: Sendable {
    /// Each interval's end, CLOCK_MONOTONIC, oldest first.
    public private(set) var times: [UInt64] = []
    private struct Change: Sendable {
        var interval: Int32
        var bytes: UInt64
    }
    private var slots = StackKeySlots()
    /// Per slot: the intervals where the key was named, in order, with its bytes then.
    private var changes: [[Change]] = []

    public init() {}

    /// Adds the next interval (later than every one before).
    public mutating func append(_ h: IntervalHistory) {
        let index = Int32(truncatingIfNeeded: times.count)
        times.append(h.interval.timeNs)
        for p in h.points {
            let (s, added) = slots.slot(of: LiveAggregateKey(stackID: p.stackID, kind: p.kind))
            if added {
                changes.append([Change(interval: index, bytes: p.bytes)])
            } else {
                changes[s].append(Change(interval: index, bytes: p.bytes))
            }
        }
    }

    /// The intervals a series keeps, in order: all of them up to `maxPoints`, else that many evenly
    /// spaced ones, the last always among them.
    public func sampledIntervals(maxPoints: Int) -> [Int] {
        let n = times.count, keep = max(2, maxPoints)
        if n <= keep { return Array(0..<n) }
        var out: [Int] = []
        out.reserveCapacity(keep)
        for k in 0..<keep {
            let i = (n - 1) - (keep - 1 - k) * (n - 1) / (keep - 1)
            if out.last != i { out.append(i) }
        }
        return out
    }

    /// A key's outstanding bytes at the `sampled` intervals (from `sampledIntervals`) from the one it
    /// first appeared in, after a 0 at the interval before (nothing was outstanding before it appeared);
    /// times in ns since `start`. Empty for a key no interval named.
    public func series(of key: LiveAggregateKey, start: UInt64, sampled: [Int]) -> [SeriesPoint] {
        guard let slot = slots[key] else { return [] }
        return series(slot: slot, start: start, sampled: sampled)
    }

    /// Where a key's changes are kept (stable as the history grows), to ask for its series without a look-up.
    public func slot(of key: LiveAggregateKey) -> Int? { slots[key] }

    /// The last interval that named the key at `slot`.
    public func lastChange(slot: Int) -> Int { Int(changes[slot].last?.interval ?? 0) }

    /// The series of the key at `slot` (see `series(of:start:sampled:)`).
    public func series(slot: Int, start: UInt64, sampled: [Int]) -> [SeriesPoint] {
        let ch = changes[slot]
        func since(_ t: UInt64) -> UInt64 { t >= start ? t - start : 0 }
        let first = Int(ch[0].interval)
        var out: [SeriesPoint] = []
        if first > 0 { out.append(SeriesPoint(timeNs: since(times[first - 1]), bytes: 0)) }
        // The first sampled interval at or after the first appearance.
        var lo = 0, hi = sampled.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sampled[mid] < first { lo = mid + 1 } else { hi = mid }
        }
        var c = 0
        for i in sampled[lo...] {
            // The last change at or before interval i: gallop, then halve (a stack named every interval
            // moves one change per sample, a long history sampled down jumps many).
            if c + 1 < ch.count && Int(ch[c + 1].interval) <= i {
                var lo = c + 1, hi = c + 2, step = 2
                while hi < ch.count && Int(ch[hi].interval) <= i {
                    lo = hi
                    hi += step
                    step *= 2
                }
                hi = min(hi, ch.count)
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2
                    if Int(ch[mid].interval) <= i { lo = mid } else { hi = mid }
                }
                c = lo
            }
            let t = since(times[i])
            if out.last?.timeNs != t { out.append(SeriesPoint(timeNs: t, bytes: ch[c].bytes)) }
        }
        return out
    }
}
