import Vocabulary
import Foundation

/// The capabilities loading and attaching tracing BPF programs takes: CAP_BPF and CAP_PERFMON, or
/// CAP_SYS_ADMIN, which implies both (and is all that kernels before 5.8 know).
public enum Capabilities {
    private static let sysAdmin = 21
    private static let perfmon = 38
    private static let bpf = 39

    /// The names of the capabilities this process lacks; empty when it may trace.
    public static func missing(statusPath: String = "/proc/self/status") -> [String] {
        guard let effective = effectiveSet(statusPath: statusPath) else {
            // Without /proc there is nothing to judge by; let the kernel answer at load time.
            return []
        }
        func has(_ cap: Int) -> Bool { effective & (1 << UInt64(cap)) != 0 }
        if has(sysAdmin) { return [] }
        var out: [String] = []
        if !has(bpf) { out.append("CAP_BPF") }
        if !has(perfmon) { out.append("CAP_PERFMON") }
        return out
    }

    /// The CapEff bit mask from /proc/self/status.
    public static func effectiveSet(statusPath: String) -> UInt64? {
        // ProcFile, not String(contentsOfFile:): that stops after a page of a /proc file, and it leaks
        // its buffer on an empty file (LeakSanitizer, found by the proc fuzzer).
        guard let text = ProcFile.read(statusPath) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return nil
    }
}
