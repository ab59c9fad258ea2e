import Foundation

/// Byte counts and rates in the short binary units a narrow terminal column holds: `512 B`,
/// `4.0 KiB`, `1.3 GiB`.
public enum ByteFormat {
    public static func human(_ bytes: UInt64) -> String { human(Double(bytes)) }

    public static func human(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = abs(bytes), u = 0
        while v >= 1024, u < units.count - 1 {
            v /= 1024
            u += 1
        }
        let sign = bytes < 0 ? "-" : ""
        return u == 0 ? "\(sign)\(Int(v.rounded())) B" : sign + String(format: v < 10 ? "%.1f" : "%.0f", v) + " " + units[u]
    }

    /// `+1.2 KiB/s`, `-300 B/s`, `0 B/s`.
    public static func rate(_ bytesPerSecond: Double) -> String {
        (bytesPerSecond > 0 ? "+" : "") + human(bytesPerSecond) + "/s"
    }

    /// Seconds with sensible precision, as the other reports print durations: "0.25 s", "12.3 s",
    /// "3 min 20 s", "2 h 5 min".
    public static func duration(ns: UInt64) -> String {
        let s = Double(ns) / 1e9
        if s < 10 { return String(format: "%.2f s", s) }
        if s < 60 { return String(format: "%.1f s", s) }
        let total = Int(s)
        if total < 3600 { return "\(total / 60) min \(total % 60) s" }
        return "\(total / 3600) h \((total % 3600) / 60) min"
    }
}
