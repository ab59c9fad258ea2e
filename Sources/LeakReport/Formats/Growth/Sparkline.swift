/// A series drawn in one line of block characters, `▁▂▃▄▅▆▇█`, scaled from zero to its largest value
/// (memory starts from nothing, so a high plateau reads as high).
public enum Sparkline {
    static let levels: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// At most `width` characters; a longer series is cut into `width` equal spans of time, each drawn
    /// at the largest value in it (so a short spike still shows).
    public static func render(_ values: [UInt64], width: Int = 24) -> String {
        guard !values.isEmpty, width > 0 else { return "" }
        let buckets: [UInt64]
        if values.count <= width {
            buckets = values
        } else {
            buckets = (0..<width).map { b in
                let lo = b * values.count / width, hi = max(lo + 1, (b + 1) * values.count / width)
                return values[lo..<hi].max() ?? 0
            }
        }
        let top = buckets.max() ?? 0
        guard top > 0 else { return String(repeating: levels[0], count: buckets.count) }
        return String(buckets.map { v in levels[Int((Double(v) / Double(top) * Double(levels.count - 1)).rounded())] })
    }

    public static func render(_ series: [SeriesPoint], width: Int = 24) -> String {
        render(series.map(\.bytes), width: width)
    }
}
