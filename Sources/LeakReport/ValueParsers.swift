import Foundation

/// Parses the human-friendly values the CLIs accept. Each failure says what was wrong in one line.
public enum ValueParsers {
    /// Why a value did not parse.
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// "4096", "4K", "1.5M", "2GiB" → bytes (K/M/G/T are powers of 1024).
    public static func size(_ text: String) throws(Invalid) -> UInt64 {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let kib = 1024.0
        let units: [(String, Double)] = [
            ("tib", kib * kib * kib * kib), ("gib", kib * kib * kib), ("mib", kib * kib), ("kib", kib),
            ("tb", kib * kib * kib * kib), ("gb", kib * kib * kib), ("mb", kib * kib), ("kb", kib),
            ("t", kib * kib * kib * kib), ("g", kib * kib * kib), ("m", kib * kib), ("k", kib), ("b", 1),
        ]
        guard let v = scaled(t, units: units, plain: 1) else {
            throw Invalid(description: "invalid size '\(text)': use bytes or a K/M/G suffix, e.g. 4096 or 1M")
        }
        return v
    }

    /// "30s", "500ms", "5m", "1h", "2d" or plain seconds → nanoseconds.
    public static func duration(_ text: String) throws(Invalid) -> UInt64 {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9), ("h", 3600e9), ("d", 86400e9)]
        guard let v = scaled(t, units: units, plain: 1e9) else {
            throw Invalid(description: "invalid duration '\(text)': use e.g. 30s, 500ms, 5m, 1h")
        }
        return v
    }

    /// A non-negative number with an optional unit suffix (the first of `units` that matches, so longer
    /// suffixes go first), scaled to an integer; nil if it does not parse or does not fit.
    private static func scaled(_ text: String, units: [(String, Double)], plain: Double) -> UInt64? {
        var number = text
        var scale = plain
        if let (suffix, s) = units.first(where: { text.hasSuffix($0.0) }) {
            number = String(text.dropLast(suffix.count))
            scale = s
        }
        guard let v = Double(number.trimmingCharacters(in: .whitespaces)), v >= 0, v.isFinite, v * scale < 1.8e19 else { return nil }
        return UInt64(v * scale)
    }
}
