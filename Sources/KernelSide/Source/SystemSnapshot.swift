import Vocabulary
import Foundation

/// The /proc files that give an OOM kill and each interval their system context.
enum SystemSnapshot {
    /// /proc/meminfo as name → kB (the few lines without a unit, like HugePages_Total, are counts).
    static func meminfo(path: String = "/proc/meminfo") -> [String: UInt64] {
        guard let text = ProcFile.read(path) else { return [:] }
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].split(separator: " ").first.flatMap { UInt64($0) }
            if let value { out[String(line[..<colon])] = value }
        }
        return out
    }

    /// /proc/loadavg's line ("0.52 0.31 0.12 2/311 4242").
    static func loadavg(path: String = "/proc/loadavg") -> String {
        (ProcFile.read(path) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The kernel's count of OOM kills so far (/proc/vmstat oom_kill), or nil if unreadable.
    static func oomKills(path: String = "/proc/vmstat") -> UInt64? {
        guard let text = ProcFile.read(path) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return UInt64(line.dropFirst("oom_kill ".count))
        }
        return nil
    }
}
