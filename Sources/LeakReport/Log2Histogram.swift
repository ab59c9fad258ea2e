import KernelSession
import SessionStore
import Vocabulary

/// Power-of-two histograms printed the way bpftrace prints `hist()`, so they read at a glance:
///
///     [16K, 32K)            12 |@@@@@@@@@@@@@@@@@@                                  |
///
/// Every bucket between the lowest and highest non-empty one is shown, empty ones with 0.
public enum Log2Histogram {
    static let barWidth = 52

    /// `buckets`: bucket index (see `ReclaimBucketRow.bucket(for:)`) → count.
    public static func render(_ buckets: [Int: UInt64]) -> String {
        let used = buckets.filter { $0.value > 0 }
        guard let lo = used.keys.min(), let hi = used.keys.max(), let peak = used.values.max() else { return "" }
        var out = ""
        for b in lo...hi {
            let count = buckets[b] ?? 0
            let label = Self.label(b)
            let bar = Int((Double(count) / Double(peak) * Double(barWidth)).rounded(.down))
            out += label.padding(toLength: max(16, label.count), withPad: " ", startingAt: 0)
            let n = String(count)
            out += String(repeating: " ", count: max(0, 8 - n.count)) + n
            out += " |" + String(repeating: "@", count: bar) + String(repeating: " ", count: barWidth - bar) + "|\n"
        }
        return out
    }

    /// "[0]", "[1]", then "[2, 4)", "[1K, 2K)", "[1M, 2M)".
    static func label(_ bucket: Int) -> String {
        if bucket < 0 { return "[0]" }
        if bucket == 0 { return "[1]" }
        let (low, high) = ReclaimBucketRow.bounds(of: bucket)
        return "[\(short(low)), \(short(high)))"
    }

    /// A power of two with bpftrace's binary suffixes.
    static func short(_ v: UInt64) -> String {
        let suffixes = ["", "K", "M", "G", "T", "P", "E"]
        var value = v
        var i = 0
        while value >= 1024 && value % 1024 == 0 && i < suffixes.count - 1 {
            value /= 1024
            i += 1
        }
        return "\(value)\(suffixes[i])"
    }
}
