import Foundation
import GRDB
import Vocabulary

/// Follows a session that a running collector writes, reading each time only what it added since the
/// previous look: the catalog grows by the new strings, locations, tree nodes and stacks (every one of
/// those tables only grows, by increasing ids), the intervals are those after the last one seen (each
/// carries the new totals of the stacks that changed in it), and the small tables (meta, counters,
/// peaks, modules, spaces) are read as they stand. Each look is one read transaction, so it sees the
/// session as of one batch of the writer, never half of one.
public final class SessionFollower {
    public let reader: SessionReader
    /// Every stack read so far; `next()` extends it in place.
    public let catalog = StackCatalog()
    /// The end of the last interval read (its stored bit pattern); none yet at first.
    private var lastIntervalNs: Int64 = .min
    private var looked = false

    /// What one look found.
    public struct Delta: Sendable {
        public var info: SessionInfo
        /// The intervals after those of the previous look, oldest first.
        public var intervals: [IntervalHistory]
        public var counters: [CounterName: UInt64]
        public var peaks: [PeakDimension: PeakRow]
        public var modules: [ModuleRow]
        public var spaces: [SpaceRow]
        /// Outstanding per stack and kind as the collector last wrote it: only in the first look (later
        /// ones learn the changes from the new intervals' history).
        public var totals: [LiveAggregate]?
    }

    public init(path: String) throws(SessionError) {
        reader = try SessionReader(path: path)
    }

    /// Reads what was added since the last call (the first call reads everything). A failed look
    /// changes nothing: the next one reads the same rows again.
    public func next() throws(SessionError) -> Delta {
        let path = reader.path, after = lastIntervalNs, catalog = catalog, first = !looked
        let delta = try reader.read { db -> Delta in
            try catalog.extend(db)
            return Delta(
                info: try SessionReader.info(db, path: path), intervals: try SessionReader.history(db, after: after),
                counters: try SessionReader.counters(db), peaks: try SessionReader.peaks(db), modules: try SessionReader.modules(db),
                spaces: try SessionReader.spaces(db), totals: first ? try Self.outstanding(db) : nil)
        }
        if let last = delta.intervals.last { lastIntervalNs = sqlInt(last.interval.timeNs) }
        looked = true
        return delta
    }

    /// Every stack's outstanding bytes and blocks, without the rest of its totals row.
    private static func outstanding(_ db: Database) throws -> [LiveAggregate] {
        var out: [LiveAggregate] = []
        let cursor = try Row.fetchCursor(db, sql: "SELECT stack_id, kind, bytes, blocks FROM stack_totals")
        while let r = try cursor.next() {
            let raw: Int64 = try r.decode(atIndex: 0), kindText: String = try r.decode(atIndex: 1)
            guard let id = SessionStackID(exactly: raw) else { throw BlobError("stack id \(raw) out of range") }
            guard let kind = BlockKind(rawValue: kindText) else { throw BlobError("unknown kind '\(kindText)'") }
            let bytes: Int64 = try r.decode(atIndex: 2), blocks: Int64 = try r.decode(atIndex: 3)
            out.append(LiveAggregate(stackID: id, kind: kind, bytes: sqlUInt(bytes), blocks: sqlUInt(blocks)))
        }
        return out
    }
}
