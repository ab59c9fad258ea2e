import Foundation

/// What a session is about: how it was collected, from which program, and how it ended. Stored as
/// key/value rows in the `meta` table; `MetaKey` holds the key names.
public struct SessionInfo: Sendable, Equatable {
    /// How the collector got its events.
    public enum Mode: String, Sendable, Codable {
        /// leakcollect started the program with the shim preloaded.
        case launch
        /// leakcollect attached to a running program that has the shim.
        case attach
        /// Kernel allocations, OOM kills and reclaim through BPF tracepoints.
        case kernel
        /// A program without the shim, traced through BPF uprobes.
        case bpf
    }

    public var mode: Mode
    /// The traced program's argv (launch mode), or its /proc cmdline (attach mode).
    public var command: [String]
    public var pid: Int32?
    public var startRealtimeNs: UInt64
    public var startMonotonicNs: UInt64
    public var endRealtimeNs: UInt64?
    public var endMonotonicNs: UInt64?
    /// Absent while the collection is running, or if the collector itself died.
    public var end: SessionEnd?
    public var intervalMs: Int
    public var host: String
    public var kernelRelease: String
    /// When the collector last wrote a batch (CLOCK_MONOTONIC); set by readers only.
    public var lastFlushNs: UInt64?

    public init(
        mode: Mode, command: [String], pid: Int32?, startRealtimeNs: UInt64, startMonotonicNs: UInt64,
        intervalMs: Int, host: String = "", kernelRelease: String = ""
    ) {
        self.mode = mode
        self.command = command
        self.pid = pid
        self.startRealtimeNs = startRealtimeNs
        self.startMonotonicNs = startMonotonicNs
        self.intervalMs = intervalMs
        self.host = host
        self.kernelRelease = kernelRelease
    }

    /// The moment the session's data describes: its end, or its last flush if the collector died.
    public var asOfNs: UInt64 { endMonotonicNs ?? lastFlushNs ?? startMonotonicNs }

    /// How long the session ran, if it ended.
    public var durationNs: UInt64? {
        guard let e = endMonotonicNs, e >= startMonotonicNs else { return nil }
        return e - startMonotonicNs
    }
}

/// How a session ended.
public enum SessionEnd: Sendable, Equatable {
    /// The program exited with this status.
    case exited(status: Int32)
    /// The program was killed by this signal.
    case signaled(signal: Int32)
    /// The program ended, but it was not the collector's child, so its status is unknown.
    case gone
    /// The collector detached (Ctrl-C, SIGTERM, --duration); the program kept running.
    case detached
    /// A kernel-mode collection ended (Ctrl-C, SIGTERM or --duration).
    case stopped

    /// One line for people: "exited with status 0", "killed by signal 11 (SIGSEGV)".
    public var summary: String {
        switch self {
        case .exited(let s): return "exited with status \(s)"
        case .signaled(let sig): return "killed by signal \(sig) (\(SignalNames.name(sig)))"
        case .gone: return "exited (status unknown: not started by leakcollect)"
        case .detached: return "still running; the collector detached"
        case .stopped: return "collection stopped"
        }
    }
}

/// Signal names for the summaries, so no report has to print a bare number.
public enum SignalNames {
    private static let names: [Int32: String] = [
        1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
        8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM",
        15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
        21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM",
        27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
    ]

    public static func name(_ signal: Int32) -> String { names[signal] ?? "signal \(signal)" }
}

extension SessionInfo {
    /// The `meta` rows that describe this session: the one place its keys are written.
    func metaRows() -> [(MetaKey, String)] {
        var rows: [(MetaKey, String)] = [
            (.schemaVersion, String(SessionSchema.version)),
            (.mode, mode.rawValue),
            (.command, String(decoding: (try? JSONEncoder().encode(command)) ?? Data("[]".utf8), as: UTF8.self)),
            (.startRealtimeNs, String(startRealtimeNs)),
            (.startMonotonicNs, String(startMonotonicNs)),
            (.intervalMs, String(intervalMs)),
            (.host, host),
            (.kernelRelease, kernelRelease),
        ]
        if let pid { rows.append((.pid, String(pid))) }
        if let v = endRealtimeNs { rows.append((.endRealtimeNs, String(v))) }
        if let v = endMonotonicNs { rows.append((.endMonotonicNs, String(v))) }
        switch end {
        case .exited(let s)?:
            rows.append((.endReason, "exited"))
            rows.append((.exitStatus, String(s)))
        case .signaled(let sig)?:
            rows.append((.endReason, "signaled"))
            rows.append((.exitSignal, String(sig)))
        case .gone?: rows.append((.endReason, "gone"))
        case .detached?: rows.append((.endReason, "detached"))
        case .stopped?: rows.append((.endReason, "stopped"))
        case nil: break
        }
        return rows
    }

    /// The session described by `meta` rows; nil fields are absent or malformed.
    static func decode(meta: [String: String], path: String) throws(SessionError) -> SessionInfo {
        func get(_ k: MetaKey) -> String? { meta[k.rawValue] }
        guard let versionText = get(.schemaVersion), let version = Int(versionText) else {
            throw .corrupt(path: path, detail: "no schema version in meta")
        }
        guard version == SessionSchema.version else {
            throw .unsupportedVersion(path: path, found: version, expected: SessionSchema.version)
        }
        guard let modeText = get(.mode), let mode = SessionInfo.Mode(rawValue: modeText),
            let start = get(.startRealtimeNs).flatMap(UInt64.init), let startMono = get(.startMonotonicNs).flatMap(UInt64.init)
        else {
            throw .corrupt(path: path, detail: "meta lacks mode or start time")
        }
        let command = get(.command).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        var info = SessionInfo(
            mode: mode, command: command, pid: get(.pid).flatMap { Int32($0) }, startRealtimeNs: start, startMonotonicNs: startMono,
            intervalMs: get(.intervalMs).flatMap { Int($0) } ?? 0, host: get(.host) ?? "", kernelRelease: get(.kernelRelease) ?? "")
        info.endRealtimeNs = get(.endRealtimeNs).flatMap { UInt64($0) }
        info.endMonotonicNs = get(.endMonotonicNs).flatMap { UInt64($0) }
        info.lastFlushNs = get(.lastFlushNs).flatMap { UInt64($0) }
        switch get(.endReason) {
        case "exited": info.end = .exited(status: get(.exitStatus).flatMap { Int32($0) } ?? 0)
        case "signaled": info.end = .signaled(signal: get(.exitSignal).flatMap { Int32($0) } ?? 0)
        case "gone": info.end = .gone
        case "detached": info.end = .detached
        case "stopped": info.end = .stopped
        default: info.end = nil
        }
        return info
    }
}

/// The keys of the `meta` table.
enum MetaKey: String, CaseIterable {
    case schemaVersion = "schema_version"
    case mode, command, pid
    case startRealtimeNs = "start_realtime_ns"
    case startMonotonicNs = "start_monotonic_ns"
    case endRealtimeNs = "end_realtime_ns"
    case endMonotonicNs = "end_monotonic_ns"
    case endReason = "end_reason"
    case exitStatus = "exit_status"
    case exitSignal = "exit_signal"
    case intervalMs = "interval_ms"
    case host
    case kernelRelease = "kernel_release"
    case lastFlushNs = "last_flush_ns"
}
