import GRDB
import SessionStore
import Vocabulary

/// One flush's worth of the kernel tables. Running totals replace the stored rows; events and intervals
/// are appended.
public struct KernelRows: SessionRows, Equatable {
    public var oomEvents: [OOMEventRow] = []
    public var reaper: [OOMReaperRow] = []
    public var reclaimTotals: [ReclaimTotalRow] = []
    public var reclaimBuckets: [ReclaimBucketRow] = []
    public var stallers: [ReclaimStallerRow] = []
    public var kswapd: [KswapdRow] = []
    public var shrinkers: [ShrinkerRow] = []
    public var intervals: [KernelIntervalRow] = []
    public var tracepoints: [TracepointRow] = []

    public init() {}

    public func write(to db: Database) throws {
        try OOMEventRow.insert(oomEvents, into: db)
        try OOMReaperRow.insert(reaper, into: db)
        try ReclaimTotalRow.insert(reclaimTotals, into: db)
        try ReclaimBucketRow.insert(reclaimBuckets, into: db)
        try ReclaimStallerRow.insert(stallers, into: db)
        try KswapdRow.insert(kswapd, into: db)
        try ShrinkerRow.insert(shrinkers, into: db)
        try KernelIntervalRow.insert(intervals, into: db)
        try TracepointRow.insert(tracepoints, into: db)
    }

    /// Every kernel table's row type, in the order the schema creates them.
    public static let tables: [any KernelTableRow.Type] = [
        OOMEventRow.self, OOMReaperRow.self, ReclaimTotalRow.self, ReclaimBucketRow.self, ReclaimStallerRow.self, KswapdRow.self,
        ShrinkerRow.self, KernelIntervalRow.self, TracepointRow.self,
    ]
}
