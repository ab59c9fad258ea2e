import Foundation

/// How many allocations one sampled allocation stands for, under Poisson sampling by bytes with mean
/// interval `interval` (heapprofd's and Go's scheme): a block of `size` bytes is sampled with probability
/// 1 - exp(-size / interval), so it stands for 1 / that many blocks of its size. Blocks of at least
/// `interval` bytes are always recorded (weight 1), as heapprofd does, so large leaks are exact.
public enum SamplingWeight {
    /// `leakcollect --sample`'s interval, 512 KiB: Go's MemProfileRate and jemalloc's lg_prof_sample
    /// default, the interval production profilers run at all the time. heapprofd's 4096 records one
    /// allocation in eight of a typical small-block workload, each paying a full stack walk.
    public static let defaultIntervalBytes: UInt64 = 512 << 10

    public static func weight(size: UInt64, interval: UInt64) -> Double {
        guard interval > 0, size < interval, size > 0 else { return 1 }
        let ratio = Double(size) / Double(interval)
        let p = 1 - exp(-ratio)
        // Below about 1e-16 (a hostile session's interval of 2^60 for a 16-byte block) 1 - exp rounds
        // to 0; the probability is then the ratio itself, which keeps the weight finite.
        return 1 / (p > 0 ? p : ratio)
    }

    /// A non-negative weighted figure as a whole number, saturating: a size times a weight can round to
    /// 2^64, one past what UInt64 holds.
    @inline(__always) static func whole(_ x: Double) -> UInt64 {
        x >= 18_446_744_073_709_551_615.0 ? .max : UInt64(x)
    }
}

extension SamplingWeight {
    /// What one recorded block of `size` stands for in totals, as whole bytes and blocks (rounded per
    /// block, so a free subtracts exactly what its allocation added). Unsampled (`interval` nil): itself.
    @inline(__always) public static func weighted(size: UInt64, interval: UInt64?) -> (bytes: UInt64, blocks: UInt64) {
        guard let interval, size < interval else { return (size, 1) }
        let w = weight(size: size, interval: interval)
        return (whole((Double(size) * w).rounded()), max(1, whole(w.rounded())))
    }
}
