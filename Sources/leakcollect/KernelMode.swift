import ArgumentParser
import CLISupport
import KernelSide
import SessionStore

/// The options only `leakcollect --kernel` has. The root command includes them with `@OptionGroup` and,
/// when `kernel` is set, calls `KernelMode.run` with the options it shares with the other modes
/// (`-o`, `--duration`, `--interval`).
struct KernelModeOptions: ParsableArguments {
    @Flag(help: "Collect kernel allocations by kernel stack, OOM kills and reclaim through BPF tracepoints (needs root, or CAP_BPF and CAP_PERFMON).")
    var kernel = false

    @Option(help: "With --kernel: which allocations to track: slab, page, percpu or all, or a comma-separated list.")
    var kind: String = "all"

    @Option(help: "With --kernel: only allocations by this process (frees are seen whoever frees).")
    var pid: Int32?

    @Option(help: "With --kernel: only allocations by tasks of this command name (at most 15 characters).")
    var comm: String?
}

/// Runs a kernel-mode collection; every failure becomes a one-line `UserError`.
enum KernelMode {
    static func run(_ k: KernelModeOptions, output: String, durationNs: UInt64?, intervalMs: Int, depth: Int?) throws {
        do {
            var options = KernelCollectorOptions(
                output: output, durationNs: durationNs, pid: k.pid, comm: k.comm, kinds: try KernelAllocationKind.parse(k.kind))
            options.intervalMs = intervalMs
            options.maxDepth = depth
            _ = try KernelCollector.run(options)
        } catch let e as KernelError {
            throw UserError(e.description)
        } catch let e as SessionError {
            throw UserError(e.description)
        }
    }
}
