/// Why a kernel-mode collection could not start or run. `description` is one line for the user.
public enum KernelError: Error, CustomStringConvertible, Equatable {
    /// The process lacks what loading tracing BPF programs needs; the names are the missing ones.
    case missingCapabilities([String])
    /// No BTF for the running kernel, so the CO-RE programs cannot be relocated.
    case noKernelBTF(path: String)
    case bpfObject(name: String, detail: String)
    case noTracepointAttached
    case badOption(String)
    case ringBuffer(String)
    /// The collection stopped on an error after collecting something; the session holds what came before.
    case collection(String)

    public var description: String {
        switch self {
        case .missingCapabilities(let caps):
            return "--kernel needs CAP_BPF and CAP_PERFMON (or root); this process lacks \(caps.joined(separator: " and "))"
        case .noKernelBTF(let path):
            return "the kernel has no BTF at \(path) (CONFIG_DEBUG_INFO_BTF), which --kernel needs to load its BPF programs"
        case .bpfObject(let name, let detail):
            return "cannot load the BPF programs of \(name): \(detail)"
        case .noTracepointAttached:
            return "no kernel tracepoint could be attached; nothing to collect"
        case .badOption(let text):
            return text
        case .collection(let detail): return detail
        case .ringBuffer(let detail):
            return "cannot read the BPF ring buffer: \(detail)"
        }
    }
}
