import ReportFormats
import Foundation
import KernelSession
import SessionStore
import Vocabulary

/// Small text helpers every renderer shares.
public enum Formatting {
    /// `0x` and 16 hex digits, so frame columns line up.
    public static func address(_ a: UInt64) -> String {
        let h = String(a, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - h.count)) + h
    }

    /// `0x` and as many hex digits as needed.
    public static func hex(_ a: UInt64) -> String { "0x" + String(a, radix: 16) }

    /// Seconds with sensible precision: "0.25 s", "12.3 s", "3 min 20 s", "2 h 5 min".
    public static func duration(ns: UInt64) -> String {
        let s = Double(ns) / 1e9
        if s < 10 { return String(format: "%.2f s", s) }
        if s < 60 { return String(format: "%.1f s", s) }
        let total = Int(s)
        if total < 3600 { return "\(total / 60) min \(total % 60) s" }
        return "\(total / 3600) h \((total % 3600) / 60) min"
    }

    /// "HH:MM:SS" local time of a CLOCK_REALTIME nanosecond stamp.
    public static func clock(realtimeNs: UInt64) -> String {
        var t = time_t(realtimeNs / 1_000_000_000)
        var tmv = tm()
        localtime_r(&t, &tmv)
        return String(format: "%02d:%02d:%02d", tmv.tm_hour, tmv.tm_min, tmv.tm_sec)
    }

    /// One frame as the text reports print it: `0xADDR function+0xOFF [module] file:line`; an inlined
    /// call (which has no offset of its own) reads `function (inlined) [module] file:line`, as the
    /// report formats print it too. A frame without a symbol shows
    /// its module and file offset, `[dash+0x1a2b3]`, so it can be symbolized later; JIT code shows `[jit]`.
    public static func frame(_ f: FrameRow) -> String {
        var s = address(f.address) + " "
        let jit = f.module == FrameRow.jitModule
        // The module follows a name; a frame without one says where it is instead.
        var module = f.module.map { jit ? $0 : "[" + FrameNames.basename($0) + "]" }
        if let fn = f.function {
            s += fn
            if let off = f.offset { s += "+" + hex(off) }
        } else if let m = f.module, !jit, let off = f.fileOffset {
            s += "[" + FrameNames.basename(m) + "+" + hex(off) + "]"
            module = nil
        } else if jit {
            s += FrameRow.jitModule
            module = nil
        } else {
            s += "[unknown]"
        }
        if f.inlined { s += " (inlined)" }
        if let module { s += " " + module }
        if let file = f.file, let line = f.line { s += " \(file):\(line)" }
        return s
    }

    /// A command line as one string, arguments with spaces quoted.
    public static func command(_ argv: [String]) -> String {
        if argv.isEmpty { return "?" }
        return argv.map { $0.isEmpty || $0.contains(" ") ? "'" + $0 + "'" : $0 }.joined(separator: " ")
    }

    /// The session's one-line description: command, pid, mode, how it ended, how long it ran.
    public static func sessionLine(_ info: SessionInfo) -> String {
        var parts: [String] = []
        let cmd = info.command.isEmpty ? (info.mode == .kernel ? "kernel" : "?") : info.command.joined(separator: " ")
        parts.append(info.pid.map { "\(cmd) (pid \($0))" } ?? cmd)
        parts.append("\(info.mode.rawValue) mode")
        if let end = info.end {
            parts.append(end.summary)
        } else {
            parts.append("session incomplete: the collector stopped without finishing it")
        }
        let ran = info.durationNs ?? (info.lastFlushNs.map { $0 >= info.startMonotonicNs ? $0 - info.startMonotonicNs : 0 })
        if let ran { parts.append("ran \(duration(ns: ran))") }
        return parts.joined(separator: ", ")
    }
}
