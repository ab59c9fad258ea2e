import ReportFormats
import SessionStore
import Vocabulary

/// Per-stack series of outstanding bytes from a session's interval history, for the growth score.
public enum StackSeries {
    /// Each key's outstanding bytes at each (sampled) interval's end, from the interval it first
    /// appeared in; an interval that does not name a stack kept its previous value. Times are ns since
    /// `start`. A history longer than `maxPoints` is sampled at evenly spaced intervals, the last kept.
    public static func series(of keys: [LiveAggregateKey], history: [IntervalHistory], start: UInt64, maxPoints: Int = 120) -> [[SeriesPoint]] {
        var out = [[SeriesPoint]](repeating: [], count: keys.count)
        guard !history.isEmpty else { return out }
        var index: [LiveAggregateKey: Int] = [:]
        for (i, k) in keys.enumerated() { index[k] = i }
        let n = history.count, keep = max(2, maxPoints)
        var sampled = [Bool](repeating: n <= keep, count: n)
        if n > keep { for k in 0..<keep { sampled[(n - 1) - (keep - 1 - k) * (n - 1) / (keep - 1)] = true } }
        var current = [UInt64](repeating: 0, count: keys.count)
        var seen: [Int] = []
        var isSeen = [Bool](repeating: false, count: keys.count)
        func since(_ t: UInt64) -> UInt64 { t >= start ? t - start : 0 }
        for (i, h) in history.enumerated() {
            for p in h.points {
                guard let s = index[LiveAggregateKey(stackID: p.stackID, kind: p.kind)] else { continue }
                current[s] = p.bytes
                if !isSeen[s] {
                    isSeen[s] = true
                    seen.append(s)
                    // Nothing was outstanding before the stack first appeared: its series starts from 0.
                    if i > 0 { out[s].append(SeriesPoint(timeNs: since(history[i - 1].interval.timeNs), bytes: 0)) }
                }
            }
            guard sampled[i] else { continue }
            let t = since(h.interval.timeNs)
            for s in seen where out[s].last?.timeNs != t { out[s].append(SeriesPoint(timeNs: t, bytes: current[s])) }
        }
        return out
    }

    /// Series added up by time (stacks merged because they read the same).
    public static func sum(_ series: [[SeriesPoint]]) -> [SeriesPoint] {
        if series.count == 1 { return series[0] }
        var byTime: [UInt64: UInt64] = [:]
        for s in series { for p in s { byTime[p.timeNs, default: 0] &+= p.bytes } }
        return byTime.keys.sorted().map { SeriesPoint(timeNs: $0, bytes: byTime[$0] ?? 0) }
    }
}
