import GRDB
import SessionStore
import Vocabulary

/// Reads the kernel side's tables. In a session of another mode they are empty. Every row is decoded
/// strictly (see `ColumnValue`): a cell of the wrong type or an unknown name is a corrupt session.
/// Whole tables are read even where a report shows a part, so a corrupt row cannot hide behind a filter.
extension SessionReader {
    /// OOM victims in time order.
    public func oomEvents() throws(SessionError) -> [OOMEventRow] {
        try read { db in try OOMEventRow.fetchAll(db, orderedBy: [.timeNs]) }
    }

    /// The OOM reaper's steps in time order.
    public func oomReaperSteps() throws(SessionError) -> [OOMReaperRow] {
        try read { db in try OOMReaperRow.fetchAll(db, orderedBy: [.timeNs]) }
    }

    /// Totals per reclaim kind; a kind that never happened has a row of zeros.
    public func reclaimTotals() throws(SessionError) -> [ReclaimKind: ReclaimTotalRow] {
        let rows = try read { db in try ReclaimTotalRow.fetchAll(db) }
        var out = Dictionary(uniqueKeysWithValues: ReclaimKind.allCases.map { ($0, ReclaimTotalRow(kind: $0)) })
        for r in rows { out[r.kind] = r }
        return out
    }

    /// The non-empty latency buckets of one reclaim kind, lowest first.
    public func reclaimHistogram(_ kind: ReclaimKind) throws(SessionError) -> [ReclaimBucketRow] {
        try read { db in
            let rows = try ReclaimBucketRow.fetchAll(db, orderedBy: [.bucket]).filter { $0.kind == kind && $0.count > 0 }
            // A bucket is a power of two of nanoseconds (-1 for 0 ns), once per kind. Anything else was not
            // written by a collector, and the report would print every bucket from the lowest to the
            // highest (a trillion lines) or trap on the duplicate.
            var seen = Set<Int>()
            for r in rows where !(-1...63).contains(r.bucket) || !seen.insert(r.bucket).inserted {
                throw BlobError("reclaim histogram bucket \(r.bucket) of \(kind.rawValue) reclaim is out of range or repeated")
            }
            return rows
        }
    }

    /// The processes that stalled longest in one kind of reclaim, longest total first.
    public func reclaimStallers(_ kind: ReclaimKind, limit: Int) throws(SessionError) -> [ReclaimStallerRow] {
        let all = try read { db in try ReclaimStallerRow.fetchAll(db) }
        return Array(all.filter { $0.kind == kind }.sorted { ($1.totalNs, $0.pid) < ($0.totalNs, $1.pid) }.prefix(max(limit, 0)))
    }

    /// kswapd per node.
    public func kswapd() throws(SessionError) -> [KswapdRow] {
        try read { db in try KswapdRow.fetchAll(db, orderedBy: [.nid]) }
    }

    /// Shrinkers, longest total time first.
    public func shrinkers() throws(SessionError) -> [ShrinkerRow] {
        try read { db in try ShrinkerRow.fetchAll(db) }.sorted { ($1.totalNs, $0.name) < ($0.totalNs, $1.name) }
    }

    /// Per-interval kernel snapshots in time order.
    public func kernelIntervals() throws(SessionError) -> [KernelIntervalRow] {
        try read { db in try KernelIntervalRow.fetchAll(db, orderedBy: [.timeNs]) }
    }

    /// Every tracepoint the collector tried, by name.
    public func tracepoints() throws(SessionError) -> [TracepointRow] {
        try read { db in try TracepointRow.fetchAll(db, orderedBy: [.name]) }
    }
}
