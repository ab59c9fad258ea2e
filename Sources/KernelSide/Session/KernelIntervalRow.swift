import SessionStore

/// What one flush interval saw in the kernel, and memory at its end (like vmscan.bt's columns).
public struct KernelIntervalRow: KernelTableRow, Equatable {
    /// CLOCK_MONOTONIC at the end of the interval.
    public var timeNs: UInt64
    public var slabAllocs: UInt64 = 0
    public var slabFrees: UInt64 = 0
    public var pageAllocs: UInt64 = 0
    public var pageFrees: UInt64 = 0
    public var percpuAllocs: UInt64 = 0
    public var percpuFrees: UInt64 = 0
    public var directReclaims: UInt64 = 0
    public var directReclaimNs: UInt64 = 0
    public var memcgReclaims: UInt64 = 0
    public var memcgReclaimNs: UInt64 = 0
    public var kswapdWakes: UInt64 = 0
    public var shrinkSlabNs: UInt64 = 0
    public var writepages: UInt64 = 0
    public var memFreeKB: UInt64?
    public var slabKB: UInt64?
    public var sUnreclaimKB: UInt64?
    public var anonKB: UInt64?

    public init(timeNs: UInt64) { self.timeNs = timeNs }

    public static let tableName = "kernel_intervals"
    public static let primaryKey: [CodingKeys] = [.timeNs]
    public static let tableNote = """
        One row per flush interval: what happened in it (counts and nanoseconds), and memory from \
        /proc/meminfo (kB) at its end, for trends.
        """
    public typealias Column = CodingKeys
    public enum CodingKeys: String, CodingKey {
        case timeNs = "time_ns"
        case slabAllocs = "slab_allocs"
        case slabFrees = "slab_frees"
        case pageAllocs = "page_allocs"
        case pageFrees = "page_frees"
        case percpuAllocs = "percpu_allocs"
        case percpuFrees = "percpu_frees"
        case directReclaims = "direct_reclaims"
        case directReclaimNs = "direct_reclaim_ns"
        case memcgReclaims = "memcg_reclaims"
        case memcgReclaimNs = "memcg_reclaim_ns"
        case kswapdWakes = "kswapd_wakes"
        case shrinkSlabNs = "shrink_slab_ns"
        case writepages
        case memFreeKB = "mem_free_kb"
        case slabKB = "slab_kb"
        case sUnreclaimKB = "sunreclaim_kb"
        case anonKB = "anon_kb"
    }
}

