import Foundation
import KernelSession
import SessionStore
import Vocabulary

/// `leakreport oom`: the OOM victims of a kernel session, each with the system's state when it was
/// chosen, and what the OOM reaper did afterwards.
public struct OOMReport: Sendable {
    /// One step of the OOM reaper, and how long after the event it came.
    public struct ReaperStep: Sendable, Equatable {
        public var step: OOMReaperRow.Step
        public var afterNs: UInt64
    }

    public struct Victim: Sendable, Equatable {
        public var event: OOMEventRow
        /// The OOM reaper's steps for this pid after the event.
        public var reaper: [ReaperStep]
    }

    public var info: SessionInfo
    public var victims: [Victim]

    public static func build(_ reader: SessionReader) throws(SessionError) -> OOMReport {
        let events = try reader.oomEvents()
        let steps = try reader.oomReaperSteps()
        let victims = events.enumerated().map { i, e -> Victim in
            // A pid's reaper steps belong to its latest event before them.
            let until = events[(i + 1)...].first { $0.pid == e.pid }?.timeNs ?? UInt64.max
            let mine = steps.filter { $0.pid == e.pid && $0.timeNs >= e.timeNs && $0.timeNs < until }
            return Victim(event: e, reaper: mine.map { ReaperStep(step: $0.step, afterNs: $0.timeNs - e.timeNs) })
        }
        return OOMReport(info: reader.info, victims: victims)
    }

    /// The /proc/meminfo lines that tell where the memory went, in the order they are printed.
    public static let meminfoHighlights = ["MemTotal", "MemFree", "MemAvailable", "AnonPages", "Shmem", "Slab", "SUnreclaim", "PageTables"]
}

/// The text form: one line per victim in oomkill's manner, then its memory context.
public enum OOMTextRenderer {
    public static func render(_ r: OOMReport) -> String {
        var out = Formatting.sessionLine(r.info) + "\n"
        if r.info.mode != .kernel { out += "not a kernel session (leakcollect --kernel records OOM kills)\n" }
        let kills = r.victims.filter { $0.event.killed != false }.count
        out += r.victims.isEmpty ? "no OOM kills\n" : "\(kills) OOM kill\(kills == 1 ? "" : "s")\n"
        for v in r.victims {
            out += "\n" + line(v.event) + "\n"
            let e = v.event
            let mem = OOMReport.meminfoHighlights.compactMap { k in e.meminfo[k].map { "\(k) \($0) kB" } }
            if !mem.isEmpty { out += "  meminfo: " + mem.joined(separator: ", ") + "\n" }
            out += "  before it: \(e.memcgReclaimsBefore) memcg reclaims, \(e.directReclaimsBefore) direct reclaims\n"
            if !v.reaper.isEmpty {
                out += "  oom_reaper: " + v.reaper.map { "\($0.step.rawValue) +\(milliseconds($0.afterNs))" }.joined(separator: ", ") + "\n"
            }
        }
        return out
    }

    /// "HH:MM:SS OOM kill of PID n ("comm"), anon-rss … kB, …, loadavg …".
    static func line(_ e: OOMEventRow) -> String {
        var parts: [String] = []
        let who = "PID \(e.pid) (\"\(e.comm)\")"
        switch e.killed {
        case false?: parts.append("OOM victim \(who) was already exiting (marked, not killed)")
        default: parts.append("OOM kill of \(who)")
        }
        if let v = e.anonRssKB { parts.append("anon-rss \(v) kB") }
        if let v = e.fileRssKB { parts.append("file-rss \(v) kB") }
        if let v = e.shmemRssKB { parts.append("shmem-rss \(v) kB") }
        if let v = e.totalVmKB { parts.append("total-vm \(v) kB") }
        if let v = e.pgtablesKB { parts.append("pgtables \(v) kB") }
        if let v = e.uid { parts.append("uid \(v)") }
        if let v = e.oomScoreAdj { parts.append("oom_score_adj \(v)") }
        if let m = e.memcg {
            let limit = e.memcgLimitBytes.map { "limit \(mebibytes($0))" } ?? "no limit"
            parts.append("memcg \(m) (\(limit))")
        }
        parts.append("triggered by PID \(e.triggerPid) (\"\(e.triggerComm)\")")
        parts.append("loadavg \(e.loadavg)")
        return Formatting.clock(realtimeNs: e.realtimeNs) + " " + parts.joined(separator: ", ")
    }

    static func mebibytes(_ bytes: UInt64) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

    static func milliseconds(_ ns: UInt64) -> String { String(format: "%.1f ms", Double(ns) / 1e6) }
}

/// `leakreport oom --format json`. An event is its `oom_events` row, whose column names are the JSON
/// field names (one definition, `OOMEventRow`), and the documented groupings of it: `time` (ISO 8601),
/// `trigger`, `reclaims_before` and the OOM reaper's steps.
public struct OOMJSON: Codable, Equatable {
    /// The task that ran the OOM killer.
    public struct Task: Codable, Equatable {
        public var pid: Int32
        public var comm: String
    }

    /// Reclaims completed before the event, by kind.
    public struct Reclaims: Codable, Equatable {
        public var direct: UInt64
        public var memcg: UInt64
    }

    /// One OOM reaper step, after the event.
    public struct ReaperStep: Codable, Equatable {
        public var step: OOMReaperRow.Step
        public var afterNs: UInt64
        enum CodingKeys: String, CodingKey {
            case step
            case afterNs = "after_ns"
        }
    }

    /// What an event adds to its row: the documented groupings.
    public struct Groups: Codable, Equatable {
        /// ISO 8601, UTC, milliseconds.
        public var time: String
        public var trigger: Task
        public var reclaimsBefore: Reclaims
        public var reaper: [ReaperStep]
        enum CodingKeys: String, CodingKey {
            case time, trigger, reaper
            case reclaimsBefore = "reclaims_before"
        }
    }

    /// One victim: its row's fields and the groupings.
    public typealias Event = RowJSON<OOMEventRow, Groups>

    public var events: [Event]

    public init(_ r: OOMReport) {
        events = r.victims.map { v in
            let e = v.event
            return Event(
                e,
                Groups(
                    time: Self.iso8601(realtimeNs: e.realtimeNs), trigger: Task(pid: e.triggerPid, comm: e.triggerComm),
                    reclaimsBefore: Reclaims(direct: e.directReclaimsBefore, memcg: e.memcgReclaimsBefore),
                    reaper: v.reaper.map { ReaperStep(step: $0.step, afterNs: $0.afterNs) }))
        }
    }

    public func encoded() -> String { ReportJSON.encode(self) }

    static func iso8601(realtimeNs: UInt64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(realtimeNs) / 1e9))
    }
}
