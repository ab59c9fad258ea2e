import Foundation
import GRDB

/// Which live blocks a query covers.
public struct LiveFilter: Sendable, Equatable {
    /// nil: every kind.
    public var kinds: Set<BlockKind>?
    public var minSize: UInt64?
    public var maxSize: UInt64?
    /// Only blocks at least this old when the session ended.
    public var minAgeNs: UInt64?

    public init(kinds: Set<BlockKind>? = nil, minSize: UInt64? = nil, maxSize: UInt64? = nil, minAgeNs: UInt64? = nil) {
        self.kinds = kinds
        self.minSize = minSize
        self.maxSize = maxSize
        self.minAgeNs = minAgeNs
    }
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

/// Reads a session file, refusing anything that is missing, truncated, corrupt or of another version.
/// Every failure is a `SessionError` with a one-line message.
public final class SessionReader {
    public let path: String
    private let queue: DatabaseQueue
    public let info: SessionInfo

    public init(path: String) throws(SessionError) {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { throw .notFound(path: path) }
        try Self.checkFileHeader(path)
        do {
            var config = Configuration()
            config.readonly = true
            queue = try DatabaseQueue(path: path, configuration: config)
            info = try queue.read { db -> SessionInfo in
                let appID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                guard appID == SessionSchema.applicationID else {
                    throw SessionError.notASession(path: path, reason: "SQLite file without the session application id")
                }
                let meta = try Self.readMeta(db, path: path)
                return try Self.decodeInfo(meta, path: path)
            }
        } catch let e as SessionError {
            throw e
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    /// SQLite notices a truncated file only when a query touches a missing page, which can leave a
    /// report silently short. The header says how many pages the file must have; check that first.
    private static func checkFileHeader(_ path: String) throws(SessionError) {
        guard let fh = FileHandle(forReadingAtPath: path) else { throw .corrupt(path: path, detail: "cannot open for reading") }
        defer { try? fh.close() }
        let header = (try? fh.read(upToCount: 100)) ?? Data()
        guard header.count == 100, header.starts(with: Data("SQLite format 3\0".utf8)) else {
            if header.isEmpty { throw .corrupt(path: path, detail: "the file is empty") }
            throw .notASession(path: path, reason: "not an SQLite file")
        }
        func be32(_ at: Int) -> UInt32 { header[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        var pageSize = UInt64(header[16]) << 8 | UInt64(header[17])
        if pageSize == 1 { pageSize = 65536 }
        let pages = UInt64(be32(28))
        // The in-header page count is only authoritative when "version-valid-for" matches the change counter.
        let valid = be32(92) == be32(24)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
        if valid, pages > 0, size < pages * pageSize {
            throw .corrupt(path: path, detail: "truncated: \(size) bytes, its header says \(pages * pageSize)")
        }
    }

    private static func classify(_ error: Error, path: String) -> SessionError {
        if let e = error as? SessionError { return e }
        let detail = SessionWriter.oneLine(error)
        if let db = error as? DatabaseError, db.resultCode == .SQLITE_NOTADB {
            return .notASession(path: path, reason: detail)
        }
        return .corrupt(path: path, detail: detail)
    }

    private static func readMeta(_ db: Database, path: String) throws -> [String: String] {
        guard try db.tableExists("meta") else { throw SessionError.notASession(path: path, reason: "no meta table") }
        var meta: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT key, value FROM meta") {
            if let k: String = row["key"], let v: String = row["value"] { meta[k] = v }
        }
        return meta
    }

    private static func decodeInfo(_ meta: [String: String], path: String) throws(SessionError) -> SessionInfo {
        func get(_ k: MetaKey) -> String? { meta[k.rawValue] }
        guard let versionText = get(.schemaVersion), let version = Int(versionText) else {
            throw .corrupt(path: path, detail: "no schema version in meta")
        }
        guard version == SessionSchema.version else {
            throw .unsupportedVersion(path: path, found: version, expected: SessionSchema.version)
        }
        guard let modeText = get(.mode), let mode = SessionInfo.Mode(rawValue: modeText),
            let start = get(.startRealtimeNs).flatMap(UInt64.init), let startMono = get(.startMonotonicNs).flatMap(UInt64.init)
        else {
            throw .corrupt(path: path, detail: "meta lacks mode or start time")
        }
        let command = get(.command).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        var info = SessionInfo(
            mode: mode, command: command, pid: get(.pid).flatMap { Int32($0) }, startRealtimeNs: start, startMonotonicNs: startMono,
            intervalMs: get(.intervalMs).flatMap { Int($0) } ?? 0, host: get(.host) ?? "", kernelRelease: get(.kernelRelease) ?? "")
        info.endRealtimeNs = get(.endRealtimeNs).flatMap { UInt64($0) }
        info.endMonotonicNs = get(.endMonotonicNs).flatMap { UInt64($0) }
        info.lastFlushNs = get(.lastFlushNs).flatMap { UInt64($0) }
        switch get(.endReason) {
        case "exited": info.end = .exited(status: get(.exitStatus).flatMap { Int32($0) } ?? 0)
        case "signaled": info.end = .signaled(signal: get(.exitSignal).flatMap { Int32($0) } ?? 0)
        case "gone": info.end = .gone
        case "detached": info.end = .detached
        case "stopped": info.end = .stopped
        default: info.end = nil
        }
        return info
    }

    /// Runs a read inside the one place that turns SQLite failures into `SessionError`s.
    public func read<T>(_ body: (Database) throws -> T) throws(SessionError) -> T {
        do {
            return try queue.read(body)
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    /// Every counter the session holds.
    public func counters() throws(SessionError) -> [CounterName: UInt64] {
        try read { db in
            var out: [CounterName: UInt64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, value FROM counters") {
                if let n: String = row["name"], let v: Int64 = row["value"] { out[CounterName(n)] = sqlUInt(v) }
            }
            return out
        }
    }

    private func whereClause(_ f: LiveFilter, stack: SessionStackID? = nil, kind: BlockKind? = nil) -> (String, StatementArguments) {
        var conds: [String] = []
        var args: StatementArguments = []
        if let kinds = f.kinds {
            conds.append("kind IN (\(kinds.map { _ in "?" }.joined(separator: ",")))")
            for k in kinds.sorted(by: { $0.rawValue < $1.rawValue }) { _ = args.append(contentsOf: [k.rawValue]) }
        }
        if let m = f.minSize { conds.append("size >= ?"); _ = args.append(contentsOf: [sqlInt(m)]) }
        if let m = f.maxSize { conds.append("size <= ?"); _ = args.append(contentsOf: [sqlInt(m)]) }
        if let age = f.minAgeNs {
            // Ages are measured at the moment the session describes: a block is old enough if it was
            // born no later than that moment minus the age; nothing is, if the session is younger.
            if info.asOfNs >= age {
                conds.append("time_ns <= ?")
                _ = args.append(contentsOf: [sqlInt(info.asOfNs - age)])
            } else {
                conds.append("0")
            }
        }
        if let s = stack { conds.append("stack_id = ?"); _ = args.append(contentsOf: [Int64(s)]) }
        if let k = kind { conds.append("kind = ?"); _ = args.append(contentsOf: [k.rawValue]) }
        return (conds.isEmpty ? "" : "WHERE " + conds.joined(separator: " AND "), args)
    }

    /// Outstanding bytes and blocks per stack and kind, over the live blocks the filter selects.
    public func liveAggregates(_ filter: LiveFilter) throws(SessionError) -> [LiveAggregate] {
        let (clause, args) = whereClause(filter)
        return try read { db in
            try Row.fetchAll(
                db, sql: "SELECT stack_id, kind, SUM(size) AS bytes, COUNT(*) AS blocks FROM live \(clause) GROUP BY stack_id, kind",
                arguments: args
            ).compactMap { row -> LiveAggregate? in
                guard let k: String = row["kind"], let kind = BlockKind(rawValue: k), let sid: Int64 = row["stack_id"],
                    let bytes: Int64 = row["bytes"], let blocks: Int64 = row["blocks"], let id = SessionStackID(exactly: sid)
                else { return nil }
                return LiveAggregate(stackID: id, kind: kind, bytes: sqlUInt(bytes), blocks: sqlUInt(blocks))
            }
        }
    }

    /// The live blocks of one stack and kind that the filter selects, largest first.
    public func liveBlocks(stack: SessionStackID, kind: BlockKind, filter: LiveFilter) throws(SessionError) -> [LiveRow] {
        let (clause, args) = whereClause(filter, stack: stack, kind: kind)
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM live \(clause) ORDER BY size DESC, address", arguments: args).compactMap(Self.liveRow)
        }
    }

    private static func liveRow(_ row: Row) -> LiveRow? {
        guard let k: String = row["kind"], let kind = BlockKind(rawValue: k), let addr: Int64 = row["address"],
            let size: Int64 = row["size"], let sid: Int64 = row["stack_id"], let id = SessionStackID(exactly: sid),
            let t: Int64 = row["time_ns"]
        else { return nil }
        let fn: String = row["function"] ?? ""
        let tid: Int64 = row["tid"] ?? 0
        let backing: String? = row["backing"]
        let pid: Int64? = row["pid"]
        return LiveRow(
            kind: kind, address: sqlUInt(addr), size: sqlUInt(size), stackID: id, timeNs: sqlUInt(t),
            function: AllocFunction(rawValue: fn) ?? .unknown, tid: UInt32(truncatingIfNeeded: tid),
            backing: backing.flatMap(Backing.init(rawValue:)), pid: pid.map { Int32(truncatingIfNeeded: $0) }, comm: row["comm"])
    }

    /// Several stacks at once (one pass over the frames), keyed by id; ids the session lacks are absent.
    public func stacks(_ ids: Set<SessionStackID>) throws(SessionError) -> [SessionStackID: StackRow] {
        if ids.isEmpty { return [:] }
        return try read { db in
            var out: [SessionStackID: StackRow] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT id, origin, truncated FROM stacks") {
                guard let raw: Int64 = r["id"], let id = SessionStackID(exactly: raw), ids.contains(id) else { continue }
                let origin: String = r["origin"] ?? "user"
                out[id] = StackRow(id: id, origin: StackOrigin(rawValue: origin) ?? .user, truncated: r["truncated"] ?? false, frames: [])
            }
            for r in try Row.fetchAll(db, sql: "SELECT stack_id, address, function, offset, module, file, line FROM frames ORDER BY stack_id, idx") {
                guard let raw: Int64 = r["stack_id"], let id = SessionStackID(exactly: raw), out[id] != nil else { continue }
                out[id]?.frames.append(Self.frameRow(r))
            }
            return out
        }
    }

    private static func frameRow(_ r: Row) -> FrameRow {
        let a: Int64 = r["address"] ?? 0
        let off: Int64? = r["offset"]
        return FrameRow(address: sqlUInt(a), function: r["function"], offset: off.map(sqlUInt), module: r["module"], file: r["file"], line: r["line"])
    }

    /// Outstanding and cumulative totals per stack and kind, as the collector last wrote them.
    public func totals() throws(SessionError) -> [TotalRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM stack_totals").compactMap { r -> TotalRow? in
                guard let sid: Int64 = r["stack_id"], let id = SessionStackID(exactly: sid), let k: String = r["kind"],
                    let kind = BlockKind(rawValue: k), let b: Int64 = r["bytes"], let n: Int64 = r["blocks"],
                    let tb: Int64 = r["total_bytes"], let tn: Int64 = r["total_blocks"]
                else { return nil }
                return TotalRow(stackID: id, kind: kind, bytes: sqlUInt(b), blocks: sqlUInt(n), totalBytes: sqlUInt(tb), totalBlocks: sqlUInt(tn))
            }
        }
    }

    /// Every module the session recorded.
    public func modules() throws(SessionError) -> [ModuleRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM modules ORDER BY id").map { r in
                let unloaded: Int64? = r["unloaded_ns"]
                return ModuleRow(
                    id: r["id"] ?? 0, path: r["path"] ?? "", buildID: r["build_id"] ?? "", bias: sqlUInt(r["bias"] ?? 0),
                    lo: sqlUInt(r["lo"] ?? 0), hi: sqlUInt(r["hi"] ?? 0), loadedNs: sqlUInt(r["loaded_ns"] ?? 0), unloadedNs: unloaded.map(sqlUInt))
            }
        }
    }

    /// Snapshot rows in time order.
    public func snapshots() throws(SessionError) -> [SnapshotRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM snapshots ORDER BY time_ns, stack_id, kind").compactMap { r -> SnapshotRow? in
                guard let t: Int64 = r["time_ns"], let sid: Int64 = r["stack_id"], let id = SessionStackID(exactly: sid),
                    let k: String = r["kind"], let kind = BlockKind(rawValue: k), let b: Int64 = r["bytes"], let n: Int64 = r["blocks"]
                else { return nil }
                return SnapshotRow(timeNs: sqlUInt(t), stackID: id, kind: kind, bytes: sqlUInt(b), blocks: sqlUInt(n))
            }
        }
    }
}
