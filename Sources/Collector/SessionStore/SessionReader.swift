import Foundation
import GRDB
import Vocabulary

/// Which live blocks a query covers.
public struct LiveFilter: Sendable, Equatable {
    /// nil: every kind.
    public var kinds: Set<BlockKind>?
    public var minSize: UInt64?
    public var maxSize: UInt64?
    /// Only blocks at least this old when the session ended.
    public var minAgeNs: UInt64?
    /// Only blocks of these address spaces (`leakreport top --pid`); nil: every space.
    public var spaces: Set<SpaceID>?

    public init(
        kinds: Set<BlockKind>? = nil, minSize: UInt64? = nil, maxSize: UInt64? = nil, minAgeNs: UInt64? = nil, spaces: Set<SpaceID>? = nil
    ) {
        self.kinds = kinds
        self.minSize = minSize
        self.maxSize = maxSize
        self.minAgeNs = minAgeNs
        self.spaces = spaces
    }

    /// True when per-block data must be read; kinds alone are answered by the per-stack totals.
    public var needsBlocks: Bool { minSize != nil || maxSize != nil || minAgeNs != nil || spaces != nil }

    public func admits(_ kind: BlockKind) -> Bool { kinds?.contains(kind) ?? true }
}

/// Outstanding bytes and blocks of one stack and kind, over the blocks a filter selected.
public struct LiveAggregate: Sendable, Equatable {
    public var stackID: SessionStackID
    public var kind: BlockKind
    public var bytes: UInt64
    public var blocks: UInt64

    public init(stackID: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64) {
        self.stackID = stackID
        self.kind = kind
        self.bytes = bytes
        self.blocks = blocks
    }
}

/// One flush interval as read back: its row and the stacks that changed in it.
public struct IntervalHistory: Sendable, Equatable {
    public var interval: IntervalRow
    public var points: [HistoryPoint]
}

/// Reads a session file, refusing anything missing, truncated, corrupt or of another version. Every
/// failure is a `SessionError` with a one-line message; every cell is decoded with a throwing decode,
/// so a cell of the wrong type is a corrupt session, never a crash.
public final class SessionReader {
    public let path: String
    private let queue: DatabaseQueue
    public let info: SessionInfo

    /// Opens the session file at `path`: the file's own checks (a regular file, its header against its
    /// size and -wal), then the checks every session gets.
    public convenience init(path: String) throws(SessionError) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw .notFound(path: path) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .notASession(path: path, reason: "not a regular file") }
        try SessionHeader.checkFile(path)
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: Self.configuration)
        } catch {
            throw Self.classify(error, path: path)
        }
        try self.init(queue: queue, path: path)
    }

    /// How every session is opened: read-only, so a reader can never change what it reports on; and
    /// waiting a moment on a lock, since two readers opening one WAL session at once (two reports, or a
    /// report beside a live view) can each find it briefly locked ("database is locked"). Short, so a
    /// live view's refresh never stalls long on its collector: a refresh that fails is retried anyway.
    static var configuration: Configuration {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(0.25)
        return config
    }

    /// The checks every session gets, whatever holds it (a file, or bytes in memory): its application
    /// id, its meta table, and its metadata decoded. `path` names it in errors.
    init(queue: DatabaseQueue, path: String) throws(SessionError) {
        self.path = path
        self.queue = queue
        do {
            info = try queue.read { db -> SessionInfo in
                let appID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                guard appID == SessionSchema.applicationID else {
                    throw SessionError.notASession(path: path, reason: "SQLite file without the session application id")
                }
                guard try db.tableExists("meta") else { throw SessionError.notASession(path: path, reason: "no meta table") }
                return try Self.info(db, path: path)
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    static func classify(_ error: Error, path: String) -> SessionError {
        if let e = error as? SessionError { return e }
        if let b = error as? BlobError { return .corrupt(path: path, detail: b.description) }
        let detail = SessionWriter.oneLine(error)
        if let db = error as? DatabaseError, db.resultCode == .SQLITE_NOTADB {
            return .notASession(path: path, reason: detail)
        }
        return .corrupt(path: path, detail: detail)
    }

    /// Runs a read inside the one place that turns SQLite and blob failures into `SessionError`s.
    public func read<T>(_ body: (Database) throws -> T) throws(SessionError) -> T {
        do {
            return try queue.read(body)
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    /// The session's metadata as it stands now (a running collector updates its last flush).
    static func info(_ db: Database, path: String) throws -> SessionInfo {
        var meta: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT key, value FROM meta") {
            meta[try row.decode(atIndex: 0)] = try row.decode(atIndex: 1)
        }
        return try SessionInfo.decode(meta: meta, path: path)
    }

    private static func kind(_ row: Row, _ index: Int) throws -> BlockKind {
        let text: String = try row.decode(atIndex: index)
        guard let k = BlockKind(rawValue: text) else { throw BlobError("unknown kind '\(text)'") }
        return k
    }

    private static func stackID(_ row: Row, _ index: Int) throws -> SessionStackID {
        let raw: Int64 = try row.decode(atIndex: index)
        guard let id = SessionStackID(exactly: raw) else { throw BlobError("stack id \(raw) out of range") }
        return id
    }

    private static func blob(_ row: Row, _ index: Int) throws -> [UInt8]? {
        let d: Data? = try row.decode(atIndex: index)
        return d.map { [UInt8]($0) }
    }

    // MARK: small tables

    /// Every counter the session holds.
    public func counters() throws(SessionError) -> [CounterName: UInt64] {
        try read { db in try Self.counters(db) }
    }

    static func counters(_ db: Database) throws -> [CounterName: UInt64] {
        var out: [CounterName: UInt64] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, value FROM counters") {
            let v: Int64 = try row.decode(atIndex: 1)
            out[CounterName(try row.decode(atIndex: 0) as String)] = sqlUInt(v)
        }
        return out
    }

    /// Every address space of the session.
    public func spaces() throws(SessionError) -> [SpaceRow] {
        try read { db in try Self.spaces(db) }
    }

    static func spaces(_ db: Database) throws -> [SpaceRow] {
        try Row.fetchAll(db, sql: "SELECT id, kind, pid, command, start_ns, parent, sampling_interval, end_ns, end FROM spaces ORDER BY id").map {
            r in
            let kindText: String = try r.decode(atIndex: 1)
            guard let kind = SpaceInfo.Kind(rawValue: kindText) else { throw BlobError("unknown space kind '\(kindText)'") }
            let commandText: String = try r.decode(atIndex: 3)
            let command = (try? JSONDecoder().decode([String].self, from: Data(commandText.utf8))) ?? []
            let pid: Int64? = try r.decode(atIndex: 2)
            let parent: Int64? = try r.decode(atIndex: 5)
            let sampling: Int64? = try r.decode(atIndex: 6)
            let endNs: Int64? = try r.decode(atIndex: 7)
            let end: String? = try r.decode(atIndex: 8)
            let id: Int64 = try r.decode(atIndex: 0)
            let start: Int64 = try r.decode(atIndex: 4)
            return SpaceRow(
                id: SpaceID(truncatingIfNeeded: id),
                info: SpaceInfo(
                    kind: kind, pid: pid.map { Int32(truncatingIfNeeded: $0) }, command: command, startNs: sqlUInt(start),
                    parent: parent.map { SpaceID(truncatingIfNeeded: $0) }, samplingIntervalBytes: sampling.map(sqlUInt)),
                endNs: endNs.map(sqlUInt), end: end.flatMap(SpaceEnd.init(rawValue:)))
        }
    }

    /// Every module the session recorded.
    public func modules() throws(SessionError) -> [ModuleRow] {
        try read { db in try Self.modules(db) }
    }

    static func modules(_ db: Database) throws -> [ModuleRow] {
        try Row.fetchAll(db, sql: "SELECT id, space, path, build_id, bias, lo, hi, loaded_ns, unloaded_ns FROM modules ORDER BY id").map { r in
            let space: Int64 = try r.decode(atIndex: 1)
            let bias: Int64 = try r.decode(atIndex: 4), lo: Int64 = try r.decode(atIndex: 5), hi: Int64 = try r.decode(atIndex: 6)
            let loaded: Int64 = try r.decode(atIndex: 7)
            let unloaded: Int64? = try r.decode(atIndex: 8)
            return ModuleRow(
                id: try r.decode(atIndex: 0), space: SpaceID(truncatingIfNeeded: space), path: try r.decode(atIndex: 2),
                buildID: try r.decode(atIndex: 3), bias: sqlUInt(bias), lo: sqlUInt(lo), hi: sqlUInt(hi), loadedNs: sqlUInt(loaded),
                unloadedNs: unloaded.map(sqlUInt))
        }
    }

    /// The peaks the session recorded, by dimension.
    public func peaks() throws(SessionError) -> [PeakDimension: PeakRow] {
        try read { db in try Self.peaks(db) }
    }

    static func peaks(_ db: Database) throws -> [PeakDimension: PeakRow] {
        var out: [PeakDimension: PeakRow] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT dimension, epoch, time_ns, bytes, blocks FROM peaks") {
            let name: String = try r.decode(atIndex: 0)
            guard let d = PeakDimension(name: name) else { throw BlobError("unknown peak dimension '\(name)'") }
            let e: Int64 = try r.decode(atIndex: 1), t: Int64 = try r.decode(atIndex: 2)
            let b: Int64 = try r.decode(atIndex: 3), n: Int64 = try r.decode(atIndex: 4)
            out[d] = PeakRow(dimension: d, epoch: sqlUInt(e), timeNs: sqlUInt(t), bytes: sqlUInt(b), blocks: sqlUInt(n))
        }
        return out
    }

    // MARK: per-stack totals

    /// Totals per stack and kind, as the collector last wrote them, for the kinds the filter admits.
    public func totals(kinds: Set<BlockKind>? = nil) throws(SessionError) -> [TotalRow] {
        try read { db in
            var out: [TotalRow] = []
            let cursor = try Row.fetchCursor(
                db,
                sql: """
                    SELECT stack_id, kind, bytes, blocks, total_bytes, total_blocks, temporary_blocks, temporary_bytes, peak_bytes,
                        peak_blocks, peak_epoch, all_peak_bytes, all_peak_blocks, all_peak_epoch, lifetimes_blob FROM stack_totals
                    """)
            while let r = try cursor.next() {
                let kind = try Self.kind(r, 1)
                if let kinds, !kinds.contains(kind) { continue }
                func u(_ i: Int) throws -> UInt64 { sqlUInt(try r.decode(atIndex: i)) }
                out.append(
                    TotalRow(
                        stackID: try Self.stackID(r, 0), kind: kind, bytes: try u(2), blocks: try u(3), totalBytes: try u(4),
                        totalBlocks: try u(5), temporaryBlocks: try u(6), temporaryBytes: try u(7), peakBytes: try u(8), peakBlocks: try u(9),
                        peakEpoch: try u(10), allPeakBytes: try u(11), allPeakBlocks: try u(12), allPeakEpoch: try u(13),
                        lifetimes: try Self.blob(r, 14).map { try PackedRows.decodeLifetimes($0) }))
            }
            return out
        }
    }

    /// Every interval in time order, with the stacks that changed in each.
    public func history() throws(SessionError) -> [IntervalHistory] {
        try read { db in try Self.history(db) }
    }

    /// The intervals that end after `afterNs` (stored bit pattern; every one by default), in time order.
    static func history(_ db: Database, after afterNs: Int64 = .min) throws -> [IntervalHistory] {
        try Row.fetchAll(
            db, sql: "SELECT time_ns, outstanding_blob, rss_bytes, history_blob FROM intervals WHERE time_ns > ? ORDER BY time_ns", arguments: [afterNs]
        ).map { r in
            let t: Int64 = try r.decode(atIndex: 0)
            let rss: Int64? = try r.decode(atIndex: 2)
            return IntervalHistory(
                interval: IntervalRow(
                    timeNs: sqlUInt(t), outstanding: try PackedRows.decodeKinds(try Self.blob(r, 1) ?? []), rssBytes: rss.map(sqlUInt)),
                points: try PackedRows.decodeHistory(try Self.blob(r, 3) ?? []))
        }
    }

    // MARK: stacks

    /// Every stack of the session, compactly (see `StackCatalog`).
    public func stackCatalog() throws(SessionError) -> StackCatalog {
        try read { db in try StackCatalog(db) }
    }

    /// Several stacks at once with their frames, keyed by id; ids the session lacks are absent.
    public func stacks(_ ids: Set<SessionStackID>) throws(SessionError) -> [SessionStackID: StackRow] {
        if ids.isEmpty { return [:] }
        let catalog = try stackCatalog()
        var out: [SessionStackID: StackRow] = [:]
        for id in ids { out[id] = catalog.row(id) }
        return out
    }

    // MARK: live blocks

    /// Calls `body` with every live block the filter selects, chunk by chunk in address order within
    /// each space and kind; memory stays that of one chunk.
    public func forEachLiveBlock(_ filter: LiveFilter, _ body: (LiveTableKey, LiveBlock) throws -> Void) throws(SessionError) {
        try forEachLiveChunk(filter) { key, blocks in
            for b in blocks { try body(key, b) }
        }
    }

    /// Calls `body` with each chunk's live blocks that the filter selects, in address order within each
    /// space and kind: a chunk's key once, not once per block (a report over 10M blocks pays per block
    /// only what it must).
    public func forEachLiveChunk(_ filter: LiveFilter, _ body: (LiveTableKey, [LiveBlock]) throws -> Void) throws(SessionError) {
        let asOf = info.asOfNs
        // Ages are measured at the moment the session describes; nothing is older than the session allows.
        let bornBy: UInt64? = filter.minAgeNs.map { age in asOf < age ? 0 : asOf - age }
        let noneOldEnough = filter.minAgeNs.map { asOf < $0 } ?? false
        let (minSize, maxSize) = (filter.minSize ?? 0, filter.maxSize ?? UInt64.max)
        try read { db in
            let cursor = try Row.fetchCursor(db, sql: "SELECT space, kind, chunk, base, data FROM live_chunks ORDER BY space, kind, chunk, seq")
            var current: (Int64, String, Int64)?
            var fold = LiveCheckpoint.Fold()
            func flush() throws {
                guard let (space, kindText, _) = current, let kind = BlockKind(rawValue: kindText), !noneOldEnough else { return }
                let key = LiveTableKey(space: SpaceID(truncatingIfNeeded: space), kind: kind)
                let blocks = fold.blocks()
                if filter.minSize == nil, filter.maxSize == nil, bornBy == nil { return try body(key, blocks) }
                try body(key, blocks.filter { b in b.size >= minSize && b.size <= maxSize && bornBy.map { b.timeNs <= $0 } ?? true })
            }
            while let r = try cursor.next() {
                let space: Int64 = try r.decode(atIndex: 0), kindText: String = try r.decode(atIndex: 1), chunk: Int64 = try r.decode(atIndex: 2)
                guard let kind = BlockKind(rawValue: kindText) else { throw BlobError("unknown kind '\(kindText)'") }
                if current.map({ $0 != (space, kindText, chunk) }) ?? true {
                    try flush()
                    current = (space, kindText, chunk)
                    fold = LiveCheckpoint.Fold()
                }
                guard filter.admits(kind), filter.spaces?.contains(SpaceID(truncatingIfNeeded: space)) ?? true else { continue }
                let base: Bool = try r.decode(atIndex: 3)
                let (puts, removes) = try LiveCheckpoint.decode(try Self.blob(r, 4) ?? [])
                fold.add(base: base, puts: puts, removes: removes)
            }
            try flush()
        }
    }

    /// Outstanding bytes and blocks per stack and kind over what the filter selects: the collector's
    /// per-stack totals when only kinds are asked for, otherwise a pass over the live blocks.
    public func liveAggregates(_ filter: LiveFilter) throws(SessionError) -> [LiveAggregate] {
        if !filter.needsBlocks {
            return try totals(kinds: filter.kinds).compactMap { t in
                t.blocks == 0 && t.bytes == 0 ? nil : LiveAggregate(stackID: t.stackID, kind: t.kind, bytes: t.bytes, blocks: t.blocks)
            }
        }
        // 10M blocks fall into about as many stacks as the session has: a per-block Dictionary update
        // (hashing a struct key) was most of the pass, so the sums sit in one array found through IntMap.
        var index = IntMap(capacity: 4096)
        var sums: [LiveAggregate] = []
        let weights = try samplingIntervals()
        try forEachLiveChunk(filter) { key, blocks in
            let interval = weights[key.space]
            let slot = UInt64(key.kind.slot) + 1
            var last: (stack: SessionStackID, at: Int)?
            for b in blocks {
                let w = SamplingWeight.weighted(size: b.size, interval: interval)
                // Blocks of one stack often lie side by side (allocated one after another).
                let i: Int
                if let l = last, l.stack == b.stackID {
                    i = l.at
                } else {
                    let k = UInt64(b.stackID) << 8 | slot
                    if let found = index.get(k) {
                        i = Int(found)
                    } else {
                        i = sums.count
                        index.set(k, UInt32(i))
                        sums.append(LiveAggregate(stackID: b.stackID, kind: key.kind, bytes: 0, blocks: 0))
                    }
                    last = (b.stackID, i)
                }
                sums[i].bytes &+= w.bytes
                sums[i].blocks &+= w.blocks
            }
        }
        return sums
    }

    /// The live blocks of the given stacks (and kinds) that the filter selects, largest first.
    public func liveBlocks(of wanted: Set<LiveAggregateKey>, filter: LiveFilter) throws(SessionError) -> [LiveAggregateKey: [LiveBlock]] {
        var out: [LiveAggregateKey: [LiveBlock]] = [:]
        if wanted.isEmpty { return out }
        var f = filter
        f.kinds = Set(wanted.map(\.kind)).intersection(filter.kinds ?? Set(BlockKind.allCases))
        try forEachLiveBlock(f) { key, b in
            let k = LiveAggregateKey(stackID: b.stackID, kind: key.kind)
            if wanted.contains(k) { out[k, default: []].append(b) }
        }
        for k in out.keys { out[k]?.sort { ($0.size, $1.address) > ($1.size, $0.address) } }
        return out
    }

    /// Sampling intervals of the sampled spaces.
    private func samplingIntervals() throws(SessionError) -> [SpaceID: UInt64] {
        var out: [SpaceID: UInt64] = [:]
        for s in try spaces() { if let i = s.info.samplingIntervalBytes { out[s.id] = i } }
        return out
    }

}

/// A stack and kind, the unit the reports aggregate by.
public struct LiveAggregateKey: Hashable, Sendable {
    public var stackID: SessionStackID
    public var kind: BlockKind

    public init(stackID: SessionStackID, kind: BlockKind) {
        self.stackID = stackID
        self.kind = kind
    }
}
