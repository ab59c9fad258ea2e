import SessionStore

/// Which reclaim a latency belongs to. The raw values are the session's and the JSON's spelling.
public enum ReclaimKind: String, CaseIterable, Sendable, ColumnValue {
    /// vmscan:mm_vmscan_direct_reclaim_begin/end: an allocating task reclaiming for itself.
    case direct
    /// vmscan:mm_vmscan_memcg_reclaim_begin/end: a task over its memory cgroup's limit.
    case memcg
}

/// Running totals of one reclaim kind.
public struct ReclaimTotalRow: KernelTableRow, Equatable {
    public var kind: ReclaimKind
    public var count: UInt64
    public var totalNs: UInt64
    public var maxNs: UInt64
    public var reclaimedPages: UInt64

    public init(kind: ReclaimKind, count: UInt64 = 0, totalNs: UInt64 = 0, maxNs: UInt64 = 0, reclaimedPages: UInt64 = 0) {
        self.kind = kind
        self.count = count
        self.totalNs = totalNs
        self.maxNs = maxNs
        self.reclaimedPages = reclaimedPages
    }

    public static let tableName = "reclaim_totals"
    public static let primaryKey: [CodingKeys] = [.kind]
    public static let tableNote = "Absolute. kind: 'direct' or 'memcg'."
    public typealias Column = CodingKeys
    public enum CodingKeys: String, CodingKey {
        case kind, count
        case totalNs = "total_ns"
        case maxNs = "max_ns"
        case reclaimedPages = "reclaimed_pages"
    }
}

/// One power-of-two latency bucket: `bucket` b counts values in [2^b, 2^(b+1)) ns, and b = -1 counts 0.
public struct ReclaimBucketRow: KernelTableRow, Equatable {
    public var kind: ReclaimKind
    public var bucket: Int
    public var count: UInt64

    public init(kind: ReclaimKind, bucket: Int, count: UInt64) {
        self.kind = kind
        self.bucket = bucket
        self.count = count
    }

    public static let tableName = "reclaim_histogram"
    public static let primaryKey: [CodingKeys] = [.kind, .bucket]
    public static let tableNote = "Absolute. bucket b counts latencies in [2^b, 2^(b+1)) ns; b = -1 counts 0 ns."
    public typealias Column = CodingKeys
    public enum CodingKeys: String, CodingKey {
        case kind, bucket, count
    }

    /// The bucket a value falls in.
    public static func bucket(for value: UInt64) -> Int { value == 0 ? -1 : 63 - value.leadingZeroBitCount }

    /// The bucket's inclusive lower and exclusive upper bound (0 and 1 for the zero bucket).
    public static func bounds(of bucket: Int) -> (low: UInt64, high: UInt64) {
        if bucket < 0 { return (0, 1) }
        let low = UInt64(1) << UInt64(min(bucket, 63))
        return (low, bucket >= 63 ? UInt64.max : low << 1)
    }
}

/// A process that stalled in reclaim, with how often and how long.
public struct ReclaimStallerRow: KernelTableRow, Equatable {
    public var kind: ReclaimKind
    public var pid: Int32
    public var comm: String
    public var count: UInt64
    public var totalNs: UInt64
    public var maxNs: UInt64

    public init(kind: ReclaimKind, pid: Int32, comm: String, count: UInt64, totalNs: UInt64, maxNs: UInt64) {
        self.kind = kind
        self.pid = pid
        self.comm = comm
        self.count = count
        self.totalNs = totalNs
        self.maxNs = maxNs
    }

    public static let tableName = "reclaim_stallers"
    public static let primaryKey: [CodingKeys] = [.kind, .pid]
    public static let tableNote = "Absolute. Per process (tgid) that stalled in reclaim."
    public typealias Column = CodingKeys
    public enum CodingKeys: String, CodingKey {
        case kind, pid, comm, count
        case totalNs = "total_ns"
        case maxNs = "max_ns"
    }
}

/// kswapd's wakes and sleeps on one NUMA node.
public struct KswapdRow: KernelTableRow, Equatable {
    public var nid: Int32
    public var wakes: UInt64
    public var sleeps: UInt64

    public init(nid: Int32, wakes: UInt64 = 0, sleeps: UInt64 = 0) {
        self.nid = nid
        self.wakes = wakes
        self.sleeps = sleeps
    }

    public static let tableName = "kswapd"
    public static let primaryKey: [CodingKeys] = [.nid]
    public static let tableNote = "Absolute. Per NUMA node."
    public typealias Column = CodingKeys
    public enum CodingKeys: String, CodingKey {
        case nid, wakes, sleeps
    }
}

/// Time spent in one shrinker (vmscan:mm_shrink_slab_start/end).
public struct ShrinkerRow: KernelTableRow, Equatable {
    public var name: String
    public var calls: UInt64
    public var totalNs: UInt64
    public var maxNs: UInt64
    /// Objects the shrinker reported freed.
    public var freed: UInt64

    public init(name: String, calls: UInt64 = 0, totalNs: UInt64 = 0, maxNs: UInt64 = 0, freed: UInt64 = 0) {
        self.name = name
        self.calls = calls
        self.totalNs = totalNs
        self.maxNs = maxNs
        self.freed = freed
    }

    public static let tableName = "shrinkers"
    public static let primaryKey: [CodingKeys] = [.name]
    public static let tableNote = "Absolute. name: the shrinker's debug name, or its scan function's symbol."
    public typealias Column = CodingKeys
    public enum CodingKeys: String, CodingKey {
        case name, calls
        case totalNs = "total_ns"
        case maxNs = "max_ns"
        case freed
    }
}

