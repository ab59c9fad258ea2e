import BPFSupport
import CLibBPF
import CollectionRunner
import Foundation
import KernelSession
import SessionStore
import Vocabulary

/// What `leakcollect --kernel` was asked to do.
public struct KernelCollectorOptions: Sendable {
    /// The session file to write.
    public var output: String
    /// Stop after this long; nil runs until SIGINT or SIGTERM.
    public var durationNs: UInt64?
    /// Only allocations made by this process (tgid). Frees are always seen, whoever frees.
    public var pid: Int32?
    /// Only allocations made by tasks of this command name (the kernel's 15-character comm).
    public var comm: String?
    public var kinds: Set<KernelAllocationKind>
    public var intervalMs: Int
    /// Further tracepoints ("category:name") attached only to count their hits, from the
    /// LEAKCOLLECT_EXTRA_TRACEPOINTS environment variable (comma separated). A name the kernel lacks is
    /// skipped with a warning like any other.
    public var extraTracepoints: [String]
    /// The BPF ring buffer's size; a power of two.
    public var ringBufferBytes: UInt32 = 64 << 20
    public var stackMapEntries: UInt32 = 16384
    /// Frames kept per kernel stack (--depth).
    public var maxDepth: Int?

    public init(
        output: String, durationNs: UInt64? = nil, pid: Int32? = nil, comm: String? = nil,
        kinds: Set<KernelAllocationKind> = Set(KernelAllocationKind.allCases), intervalMs: Int = 1000,
        extraTracepoints: [String] = KernelCollectorOptions.extraTracepointsFromEnvironment()
    ) {
        self.output = output
        self.durationNs = durationNs
        self.pid = pid
        self.comm = comm
        self.kinds = kinds
        self.intervalMs = intervalMs
        self.extraTracepoints = extraTracepoints
    }

    public static func extraTracepointsFromEnvironment() -> [String] {
        (ProcessInfo.processInfo.environment["LEAKCOLLECT_EXTRA_TRACEPOINTS"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
    }

    func validate() throws(KernelError) {
        if pid != nil && comm != nil { throw .badOption("--pid and --comm cannot be combined") }
        if let pid, pid <= 0 || kill(pid, 0) != 0 && errno == ESRCH { throw .badOption("no process with pid \(pid)") }
        if let comm, comm.isEmpty || comm.utf8.count >= Int(KE_COMM_LEN) {
            throw .badOption("--comm must be 1 to \(KE_COMM_LEN - 1) characters (the kernel's comm), got \"\(comm)\"")
        }
        if durationNs == 0 { throw .badOption("--duration must be positive") }
        if intervalMs < 10 { throw .badOption("--interval must be at least 10 ms") }
    }
}

/// How a kernel collection went, for the closing summary.
public struct KernelCollectionSummary: Sendable {
    public var events: UInt64
    public var outstandingBlocks: UInt64
    public var outstandingBytes: UInt64
    public var lostEvents: UInt64
    public var attached: Int
    public var skipped: [String]
}

/// `leakcollect --kernel`: loads the kernel side's BPF programs, attaches them to tracepoints (skipping,
/// with a warning, those this kernel lacks), and collects into a session until SIGINT, SIGTERM or the
/// duration ends it. The session is then complete and ends as `stopped`.
public enum KernelCollector {
    /// Runs one collection. `warn` gets one-line warnings and progress for stderr.
    public static func run(
        _ options: KernelCollectorOptions, warn: (String) -> Void = { FileHandle.standardError.write(Data("leakcollect: \($0)\n".utf8)) }
    ) throws -> KernelCollectionSummary {
        try options.validate()
        let missing = Capabilities.missing()
        if !missing.isEmpty { throw KernelError.missingCapabilities(missing) }
        let btf = "/sys/kernel/btf/vmlinux"
        guard FileManager.default.fileExists(atPath: btf) else { throw KernelError.noKernelBTF(path: btf) }

        let programs = try KernelPrograms(config: config(options), ringBufferBytes: options.ringBufferBytes, stackMapEntries: options.stackMapEntries)
        let (rows, skipped) = attach(TracepointSpec.selected(kinds: options.kinds, extra: options.extraTracepoints), programs, warn: warn)
        let attached = rows.filter { $0.status == .attached }.count
        if attached == 0 { throw KernelError.noTracepointAttached }

        let info = sessionInfo(options)
        let source = try KernelEventSource(
            programs: programs, tracepoints: rows, intervalNs: UInt64(options.intervalMs) * 1_000_000, command: info.command, pid: options.pid)
        var runnerOptions = RunnerOptions(intervalNs: UInt64(options.intervalMs) * 1_000_000, durationNs: options.durationNs)
        runnerOptions.kernelSymbols = source.kernelSymbols
        runnerOptions.schemaParts = [KernelSchema.self]
        // Every process's kernel allocations and task names: not for every local user to read.
        runnerOptions.fileMode = 0o600
        runnerOptions.maxDepth = options.maxDepth
        let kinds = KernelAllocationKind.allCases.filter(options.kinds.contains).map(\.rawValue).joined(separator: ", ")
        warn("tracing kernel allocations (\(kinds)), OOM kills and reclaim into \(options.output); Ctrl-C to stop")
        let result = try CollectionRunner(source: source, sessionPath: options.output, info: info, options: runnerOptions).run()
        if let failure = result.failure { throw KernelError.collection(failure) }

        let counters = result.counters
        let summary = KernelCollectionSummary(
            events: counters[.events] ?? 0, outstandingBlocks: result.outstanding.blocks, outstandingBytes: result.outstanding.bytes,
            lostEvents: counters[.lostEvents] ?? 0, attached: attached, skipped: skipped)
        var line = "session \(options.output): \(summary.events) events, \(summary.outstandingBlocks) kernel blocks outstanding"
        if summary.lostEvents > 0 { line += ", \(summary.lostEvents) events lost (ring buffer full)" }
        warn(line)
        return summary
    }

    private static func config(_ options: KernelCollectorOptions) -> ke_config {
        var c = ke_config()
        c.self_tgid = UInt32(getpid())
        c.filter_tgid = options.pid.map { UInt32(bitPattern: $0) } ?? 0
        c.page_size = UInt32(sysconf(Int32(_SC_PAGESIZE)))
        c.nr_cpus = UInt32(max(libbpf_num_possible_cpus(), 1))
        if let comm = options.comm {
            withUnsafeMutableBytes(of: &c.filter_comm) { raw in
                for (i, b) in comm.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
            }
        }
        return c
    }

    /// Attaches every selected tracepoint's programs. A tracepoint missing from this kernel is skipped
    /// with a warning naming it, unless it is only an older name of one that did attach.
    private static func attach(
        _ specs: [TracepointSpec], _ programs: KernelPrograms, warn: (String) -> Void
    ) -> (rows: [TracepointRow], skipped: [String]) {
        var rows: [TracepointRow] = []
        var skipped: [String] = []
        var attached: Set<String> = []
        var olderNames: [TracepointSpec] = []
        for spec in specs {
            var outcome = KernelPrograms.AttachOutcome.attached
            for program in spec.programs {
                outcome = programs.attach(object: spec.object, program: program, tracepoint: spec.rawName)
                if case .attached = outcome { continue }
                break
            }
            switch outcome {
            case .attached:
                attached.insert(spec.name)
                rows.append(TracepointRow(name: spec.name, status: .attached))
            case .missing where spec.olderNameOf != nil:
                olderNames.append(spec)
            case .missing:
                warn("warning: tracepoint \(spec.name) does not exist on this kernel; skipped")
                rows.append(TracepointRow(name: spec.name, status: .missing))
                skipped.append(spec.name)
            case .failed(let why):
                warn("warning: cannot attach to tracepoint \(spec.name) (\(why)); skipped")
                rows.append(TracepointRow(name: spec.name, status: .failed, detail: why))
                skipped.append(spec.name)
            }
        }
        for spec in olderNames {
            if let newer = spec.olderNameOf, attached.contains(newer) {
                rows.append(TracepointRow(name: spec.name, status: .replaced, detail: newer))
            } else {
                warn("warning: tracepoint \(spec.name) does not exist on this kernel; skipped")
                rows.append(TracepointRow(name: spec.name, status: .missing))
                skipped.append(spec.name)
            }
        }
        return (rows, skipped)
    }

    private static func sessionInfo(_ options: KernelCollectorOptions) -> SessionInfo {
        var command = CommandLine.arguments
        if command.isEmpty { command = ["leakcollect", "--kernel"] }
        return SessionInfo(
            mode: .kernel, command: command, pid: options.pid, startRealtimeNs: realtimeNow(), startMonotonicNs: monotonicNow(),
            intervalMs: options.intervalMs, host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
    }
}
