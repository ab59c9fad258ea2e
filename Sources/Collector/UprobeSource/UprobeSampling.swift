import CLibBPF
import Foundation

/// BPF-only mode's sampling settings: the shim's scheme (Poisson sampling by bytes, mean `interval`),
/// decided in the uprobe program at each allocation's entry from a per-thread countdown. The program
/// has no floating point, so its exponential draws come from a table written here: `ln 2` and the
/// midpoint `-ln m` of each bin of a draw's mantissa, both in bytes of the interval (bpf/uprobes.bpf.c).
enum UprobeSampling {
    /// `config` with sampling at `interval` bytes (nil: every allocation is recorded).
    static func configure(_ config: inout ue_config, interval: UInt64?) {
        guard let interval, interval > 0 else { return }
        let mean = Double(interval)
        config.sample_bytes = interval
        config.sample_ln2 = UInt64((mean * M_LN2).rounded())
        let bins = Int(UE_SAMPLE_BINS)
        withUnsafeMutableBytes(of: &config.sample_bin) { raw in
            let table = raw.bindMemory(to: UInt64.self)
            for i in 0..<bins {
                let m = (Double(bins + i) + 0.5) / Double(2 * bins)
                table[i] = UInt64((-log(m) * mean).rounded())
            }
        }
    }

    /// Entries of the set of sampled live blocks: room for a million (allocated as it fills), one when
    /// nothing is sampled.
    static func setEntries(interval: UInt64?) -> UInt32 { interval == nil ? 1 : 1 << 20 }
}
