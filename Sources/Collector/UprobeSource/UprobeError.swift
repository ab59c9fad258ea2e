import BPFSupport
import Glibc

/// Why a BPF-only collection could not start. `description` is the one line leakcollect prints.
public enum UprobeError: Error, CustomStringConvertible, Equatable {
    case missingCapabilities([String])
    /// The kernel cannot do what this mode needs; the text says what is missing.
    case kernelLacks(String)
    case noSuchProcess(Int32)
    case mayNotTrace(String)
    /// The target maps no allocator to put probes on.
    case noAllocator(pid: Int32, detail: String)
    case exitedDuringAttach(pid: Int32)
    case program(String)
    case bpf(BPFLoadError)
    case attach(what: String, errno: Int32)
    case ringBuffer(String)

    public var description: String {
        switch self {
        case .missingCapabilities(let caps):
            return "--bpf needs CAP_BPF and CAP_PERFMON (or root); this process lacks \(caps.joined(separator: " and "))"
        case .kernelLacks(let what): return "this kernel cannot run BPF-only mode: \(what)"
        case .noSuchProcess(let pid): return "no such process: \(pid)"
        case .mayNotTrace(let why): return why
        case .noAllocator(let pid, let detail): return "pid \(pid) has no allocator to probe: \(detail)"
        case .exitedDuringAttach(let pid): return "pid \(pid) exited while the uprobes were being attached; nothing was collected"
        case .program(let text): return text
        case .bpf(let e): return e.description
        case .attach(let what, let err): return "cannot attach a uprobe to \(what): \(String(cString: strerror(err)))"
        case .ringBuffer(let detail): return "cannot read the BPF ring buffer: \(detail)"
        }
    }
}
