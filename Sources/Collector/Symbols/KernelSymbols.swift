import Foundation
import SessionStore
import Vocabulary

/// Kernel symbols from /proc/kallsyms, modules named as the kernel names them
/// (`leak_timer_callback+0x14 [memory_leak]`); "kernel" for the core image.
public struct KernelSymbols: Sendable {
    private var addresses: [UInt64] = []
    private var names: [String] = []
    private var moduleNames: [String] = []

    /// nil when kallsyms is unreadable or hides addresses (kptr_restrict without privileges).
    public static func load(path: String = "/proc/kallsyms") -> KernelSymbols? {
        guard let text = ProcFile.read(path) else { return nil }
        var entries: [(UInt64, String, String)] = []
        entries.reserveCapacity(200_000)
        for line in text.split(separator: "\n") {
            let parts = line.split(maxSplits: 3, omittingEmptySubsequences: true) { $0 == " " || $0 == "\t" }
            guard parts.count >= 3, let addr = UInt64(parts[0], radix: 16), addr != 0 else { continue }
            // Only text symbols name code a stack can point into.
            guard let type = parts[1].first, "tTwW".contains(type) else { continue }
            var module = "kernel"
            if parts.count == 4 {
                let m = parts[3].trimmingCharacters(in: .whitespaces)
                if m.hasPrefix("[") && m.hasSuffix("]") { module = String(m.dropFirst().dropLast()) }
            }
            entries.append((addr, String(parts[2]), module))
        }
        guard !entries.isEmpty else { return nil }
        entries.sort { $0.0 < $1.0 }
        var k = KernelSymbols()
        k.addresses = entries.map(\.0)
        k.names = entries.map(\.1)
        k.moduleNames = entries.map(\.2)
        return k
    }

    public func resolve(_ address: UInt64) -> FrameRow {
        var lo = 0, hi = addresses.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if addresses[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return FrameRow(address: address, module: "kernel") }
        let i = lo - 1
        return FrameRow(address: address, function: names[i], offset: address - addresses[i], module: moduleNames[i])
    }
}
