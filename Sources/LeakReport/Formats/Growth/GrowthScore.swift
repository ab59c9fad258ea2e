/// How much a stack's outstanding bytes look like a leak: growth that is never given back, keeps
/// going, and goes on steadily. One score ranks `leakreport growth` and `top --sort growth`.
///
/// The analysis works on the *retained* series: at each moment, the least the stack held from then
/// to the end (a suffix minimum). Bytes a buffer releases later, or a cache evicts, never enter it;
/// what a leak allocates stays in it for good.
///
/// - `rate`: retained bytes gained per second since the growth began (the stale tail included, so a
///   stack that stopped growing long ago has a lower rate).
/// - `growingForNs`: from the start of that growth to its last gain.
/// - `fit`: how straight the outstanding bytes run over the whole series (r² of a least-squares
///   line): near 1 for a drip, near 0 for a buffer that fills and empties.
/// - `grewShare`: the share of intervals in that stretch in which the outstanding bytes went up.
/// - `retention`: the share of all bytes the stack gained over the series that it still holds for
///   good: 1 for a leak, about 1/k for a buffer that filled and emptied k times.
/// - `recency`: 1 while it still grows; falls to 0 once it has been flat as long as it grew (a cache
///   that filled and plateaued).
/// - `coverage`: the share of the series that the growth spans.
/// - `score` = `rate` × `fit` × `retention` × `recency` × `coverage`, in bytes/s: the leak rate,
///   discounted by every way the shape is unlike a leak.
public struct GrowthScore: Hashable, Sendable {
    public var rate: Double
    public var growingForNs: UInt64
    public var fit: Double
    public var grewShare: Double
    public var retention: Double
    public var recency: Double
    public var coverage: Double
    public var score: Double

    public static let none = GrowthScore(rate: 0, growingForNs: 0, fit: 0, grewShare: 0, retention: 0, recency: 0, coverage: 0, score: 0)

    /// Scores a series ordered by time. Fewer than two points, or no time between them, score zero.
    public init(_ points: [SeriesPoint]) {
        // Time order is assumed below (differences of times); a corrupt session may not keep it.
        let series = zip(points, points.dropFirst()).allSatisfy { $0.timeNs <= $1.timeNs } ? points : points.sorted { $0.timeNs < $1.timeNs }
        guard series.count >= 2, let first = series.first, let last = series.last, last.timeNs > first.timeNs else {
            self = .none
            return
        }
        let n = series.count
        // The retained series (each point's minimum from there on) is not built: a live view scores
        // tens of thousands of stacks per refresh. Growth starts where the retained series last stood at
        // its first level (the overall minimum: the last point holding it), and ends where it reached
        // its final level (the last point's value: the first point from which none is lower).
        var start = 0, low = UInt64.max
        for i in 0..<n where series[i].bytes <= low {
            low = series[i].bytes
            start = i
        }
        let final = series[n - 1].bytes
        var end = n - 1
        while end > 0, series[end - 1].bytes >= final { end -= 1 }
        let gained = Double(final - low)
        guard end > start, gained > 0 else {
            self = .none
            return
        }
        let t0 = series[start].timeNs, tEnd = last.timeNs
        let growing = series[end].timeNs - t0
        let stale = tEnd - series[end].timeNs

        var grossGain = 0.0, grew = 0
        for i in 1..<n where series[i].bytes > series[i - 1].bytes {
            grossGain += Double(series[i].bytes - series[i - 1].bytes)
            if i > start { grew += 1 }
        }
        rate = gained / (Double(tEnd - t0) / 1e9)
        growingForNs = growing
        fit = Self.rSquared(series[...])
        grewShare = Double(grew) / Double(n - 1 - start)
        retention = grossGain > 0 ? min(1, gained / grossGain) : 0
        recency = max(0, 1 - Double(stale) / Double(max(growing, 1)))
        coverage = Double(tEnd - t0) / Double(tEnd - first.timeNs)
        score = rate * fit * retention * recency * coverage
    }

    init(rate: Double, growingForNs: UInt64, fit: Double, grewShare: Double, retention: Double, recency: Double, coverage: Double, score: Double) {
        self.rate = rate
        self.growingForNs = growingForNs
        self.fit = fit
        self.grewShare = grewShare
        self.retention = retention
        self.recency = recency
        self.coverage = coverage
        self.score = score
    }

    /// r² of the least-squares line through the points; 0 when the bytes do not vary.
    static func rSquared(_ pts: ArraySlice<SeriesPoint>) -> Double {
        guard pts.count >= 2, let t0 = pts.first?.timeNs else { return 0 }
        let n = Double(pts.count)
        var sx = 0.0, sy = 0.0
        for p in pts {
            sx += Double(p.timeNs - t0)
            sy += Double(p.bytes)
        }
        let mx = sx / n, my = sy / n
        var sxx = 0.0, syy = 0.0, sxy = 0.0
        for p in pts {
            let dx = Double(p.timeNs - t0) - mx, dy = Double(p.bytes) - my
            sxx += dx * dx
            syy += dy * dy
            sxy += dx * dy
        }
        guard sxx > 0, syy > 0 else { return 0 }
        return (sxy * sxy) / (sxx * syy)
    }
}
