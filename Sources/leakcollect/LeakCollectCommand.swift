import ArgumentParser
import CLISupport
import CollectionRunner
import Foundation
import KernelSession
import LeakReport
import SessionStore
import ShimSource
import UprobeSource
import Vocabulary

/// `leakcollect`: runs a program with the shim, attaches to one, or traces the kernel, and writes a
/// session. Every mode is a source plugged into the one `CollectionRunner`.
struct LeakCollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leakcollect",
        abstract: "Collect outstanding allocations into a session file.",
        usage: """
            leakcollect [-o FILE] [options] -- PROGRAM [ARGS...]
            leakcollect --attach PID [--bpf] [-o FILE] [options]
            leakcollect --bpf [-o FILE] [options] -- PROGRAM [ARGS...]
            leakcollect --kernel [-o FILE] [--duration D] [--pid PID | --comm NAME] [--kind slab|page|percpu|all]
            """,
        discussion: "Ends when the program exits, on Ctrl-C/SIGTERM, or after --duration. Read the session with `leakreport top FILE`.")

    @Option(name: [.short, .customLong("output")], help: "Session file to write (default: PROGRAM.PID.leaks).") var output: String?
    @Option(help: "Attach to a running program: through its libleakshim.so ring if it has one, else through BPF uprobes.") var attach: Int32?
    @Flag(help: "Trace through BPF uprobes on the program's own allocator instead of the shim (no LD_PRELOAD; needs root, or CAP_BPF and CAP_PERFMON).")
    var bpf = false
    @Option(help: "Seconds between session flushes and snapshots (0.01 to 3600).") var interval: Double = 1
    @Option(help: "Stop after this long (e.g. 30s, 5m); the program keeps running.") var duration: String?
    @Option(help: "Path of libleakshim.so (default: next to leakcollect).") var shim: String?
    @Option(help: "Frames kept per stack, 1 to 256 (also LEAKSHIM_DEPTH for a launched program).") var depth: Int?
    @Option(name: .customLong("ring-size"), help: "Ring size for the launched program (LEAKSHIM_RING_SIZE), 64K to 1G, e.g. 64M.")
    var ringSize: String?
    @Flag(name: .customLong("follow-children"), help: "Also collect the program's fork and exec children, into the same session.")
    var followChildren = false
    @Option(
        name: .customLong("sample-bytes"),
        help: "Sample allocations by bytes (Poisson, mean interval N, e.g. 4096 as heapprofd does); blocks of N bytes or more are always recorded.")
    var sampleBytes: String?
    @Flag(help: "Sample at the default interval, 512K (--sample-bytes 512K, Go's and jemalloc's default).")
    var sample = false
    @Flag(help: "Print no summary at exit.") var quiet = false
    @Flag(help: "Show the live view of `leakreport top --live` while collecting (q closes the view; collection goes on).") var live = false
    @OptionGroup(title: "Kernel mode") var kernelOptions: KernelModeOptions
    @Argument(parsing: .captureForPassthrough, help: "The program to run and its arguments, after --.") var command: [String] = []

    func validate() throws {
        guard interval >= 0.01, interval <= 3600 else { throw ValidationError("--interval must be between 0.01 and 3600 seconds") }
        if let depth, !(1...256).contains(depth) { throw ValidationError("--depth must be between 1 and 256") }
    }

    func run() throws {
        var program = command
        if program.first == "--" {
            program.removeFirst()
        } else if let first = program.first, first == "--help" || first == "-h" {
            // Passthrough capture swallows the help flag when nothing precedes it.
            throw CleanExit.helpRequest(self)
        } else if let first = program.first, first.hasPrefix("-") {
            // Passthrough capture takes anything after the options; an option it did not know is a typo.
            throw UserError("Unknown option '\(first)' (put the program to run after --)", code: 64)
        }
        do {
            let durationNs = try duration.map(ValueParsers.duration)
            if durationNs == 0 { throw UserError("--duration must be positive") }
            let intervalNs = UInt64((interval * 1e9).rounded())
            // Before anything starts: a session that cannot be written makes the whole run useless.
            try SessionPath.check(output ?? SessionNaming.provisional)
            if kernelOptions.kernel {
                guard !live else { throw UserError("--live shows a program's collection; for the kernel, run leakreport top --live on the session") }
                guard program.isEmpty, attach == nil, !bpf else { throw UserError("--kernel traces the whole kernel: give no program, no --attach and no --bpf") }
                let programOnly = [("--shim", shim != nil), ("--ring-size", ringSize != nil), ("--follow-children", followChildren),
                    ("--sample-bytes", sampleBytes != nil), ("--sample", sample)].filter(\.1).map(\.0)
                guard programOnly.isEmpty else {
                    throw UserError("\(programOnly.joined(separator: ", ")) appl\(programOnly.count == 1 ? "ies" : "y") to a program's collection, not to --kernel")
                }
                return try KernelMode.run(
                    kernelOptions, output: output ?? SessionNaming.defaultPath(program: nil, pid: nil), durationNs: durationNs,
                    intervalMs: Int(intervalNs / 1_000_000), depth: depth)
            }
            let ring = try ringSize.map(ValueParsers.size)
            if let ring, ring < 64 << 10 || ring > 1 << 30 {
                throw UserError("--ring-size must be between 64K and 1G (the shim's limits), got \(ringSize ?? "")")
            }
            if self.sample, sampleBytes != nil { throw UserError("give --sample or --sample-bytes N, not both") }
            let sample = self.sample ? SamplingWeight.defaultIntervalBytes : try sampleBytes.map(ValueParsers.size)
            if let sample, sample == 0 || sample > 1 << 40 { throw UserError("--sample-bytes must be between 1 and 1T, got \(sampleBytes ?? "")") }
            let chosen: SourceChoice.Chosen
            if let pid = attach {
                guard program.isEmpty else { throw UserError("give either --attach PID or a program to run, not both") }
                guard shim == nil, ringSize == nil else { throw UserError("--shim and --ring-size apply to launched programs, not --attach") }
                guard !followChildren else { throw UserError("--follow-children applies to launched programs, not --attach") }
                chosen = try SourceChoice.attach(pid: pid, bpf: bpf, depth: depth, sampleBytes: sample, log: log)
            } else if !program.isEmpty {
                if bpf, shim != nil || ringSize != nil { throw UserError("--shim and --ring-size apply to the shim, not --bpf") }
                if bpf, followChildren { throw UserError("--follow-children applies to the shim, not --bpf") }
                var launch = ShimCollection.LaunchOptions(
                    shimPath: shim, depth: depth, ringSize: ring, followChildren: followChildren, sampleBytes: sample)
                launch.log = log
                chosen = try SourceChoice.launch(program, bpf: bpf, options: launch, depth: depth)
            } else {
                throw UserError("nothing to collect: give a program after --, or --attach PID")
            }
            let (source, info) = (chosen.source, chosen.info)
            var sessionInfo = info
            sessionInfo.intervalMs = Int(intervalNs / 1_000_000)
            var options = RunnerOptions(intervalNs: intervalNs, durationNs: durationNs)
            options.maxDepth = depth
            options.schemaParts = [KernelSchema.self]
            options.log = log
            // Another user's process: its allocations are its owner's business, not every local user's.
            if let owner = ProcessOwner.of(pid: chosen.pid), owner.uid != UInt32(geteuid()) { options.fileMode = 0o600 }
            let path = output ?? SessionNaming.defaultPath(program: info.command.first, pid: chosen.pid)
            let view = live ? LiveCollection(path: path) : nil
            if let view { options.log = view.log }
            let runner = CollectionRunner(source: source, sessionPath: path, info: sessionInfo, options: options)
            // Never released: the process exits right after, and freeing the tracker's blocks and every
            // module's symbols one by one only delays the return to the shell.
            _ = Unmanaged.passRetained(runner)
            let result = try runner.run()
            view?.finish()
            if !quiet { printSummary(result) }
            if let failure = result.failure { throw UserError(failure) }
            // Like time(1) or strace, hand the program's status on to whoever ran us.
            switch result.end {
            case .exited(let status)? where status != 0: throw ExitCode(status)
            case .signaled(let sig)?: throw ExitCode(128 + sig)
            default: break
            }
        } catch let e as CollectError {
            throw UserError(e.description)
        } catch let e as UprobeError {
            throw UserError(e.description)
        } catch let e as SessionError {
            throw UserError(e.description)
        } catch let e as ValueParsers.Invalid {
            throw UserError(e.description)
        }
    }

    private func log(_ line: String) { FileHandle.standardError.write(Data("leakcollect: \(line)\n".utf8)) }

    private func printSummary(_ result: CollectionResult) {
        var text = ""
        if let reader = try? SessionReader(path: result.sessionPath), let report = try? TopReport.build(reader, options: TopOptions(top: 5)) {
            text = TopTextRenderer.render(report)
        }
        text += "session written to \(result.sessionPath)\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}
