import Foundation
import GRDB

/// Writes one session file. Every source's collector uses this one writer: `create`, then `write` a
/// batch per interval (one transaction each, so a crash loses at most the current interval), then
/// `finish`. The file is SQLite in WAL mode, so `leakreport` can read it while it grows.
public final class SessionWriter {
    public let path: String
    private let queue: DatabaseQueue
    private var info: SessionInfo

    /// Creates a new session file. An existing file at `path` is kept as `path.old`, the way perf does,
    /// so an earlier session is never silently overwritten.
    public init(creating path: String, info: SessionInfo) throws(SessionError) {
        self.path = path
        self.info = info
        let fm = FileManager.default
        do {
            if fm.fileExists(atPath: path) {
                let old = path + ".old"
                for suffix in ["", "-wal", "-shm"] { try? fm.removeItem(atPath: old + suffix) }
                try fm.moveItem(atPath: path, toPath: old)
                for suffix in ["-wal", "-shm"] where fm.fileExists(atPath: path + suffix) {
                    try fm.moveItem(atPath: path + suffix, toPath: old + suffix)
                }
            }
            var config = Configuration()
            config.journalMode = .wal
            config.prepareDatabase { db in
                // A crash loses at most the last interval either way; NORMAL keeps flushes cheap.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.write { db in
                try db.execute(sql: "PRAGMA application_id = \(SessionSchema.applicationID)")
            }
            try SessionSchema.migrator.migrate(queue)
            try queue.write { db in
                try db.execute(sql: "PRAGMA user_version = \(SessionSchema.version)")
                try Self.writeMeta(info, db)
            }
        } catch let e as SessionError {
            throw e
        } catch {
            throw .cannotCreate(path: path, detail: Self.oneLine(error))
        }
    }

    /// Applies one interval's changes in a single transaction.
    public func write(_ batch: SessionBatch) throws(SessionError) {
        do {
            try queue.write { db in try Self.apply(batch, db) }
        } catch {
            throw .writeFailed(path: path, detail: Self.oneLine(error))
        }
    }

    /// Records how the session ended and checkpoints the WAL into the main file.
    public func finish(end: SessionEnd?, endRealtimeNs: UInt64, endMonotonicNs: UInt64) throws(SessionError) {
        info.end = end
        info.endRealtimeNs = endRealtimeNs
        info.endMonotonicNs = endMonotonicNs
        do {
            try queue.write { db in try Self.writeMeta(info, db) }
            try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        } catch {
            throw .writeFailed(path: path, detail: Self.oneLine(error))
        }
    }

    /// Replaces the stored session metadata (for example once the traced pid is known).
    public func update(info: SessionInfo) throws(SessionError) {
        self.info = info
        do {
            try queue.write { db in try Self.writeMeta(info, db) }
        } catch {
            throw .writeFailed(path: path, detail: Self.oneLine(error))
        }
    }

    static func oneLine(_ error: Error) -> String {
        let text: String
        if let db = error as? DatabaseError { text = db.message ?? "\(db.resultCode)" } else { text = "\(error)" }
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    private static func writeMeta(_ info: SessionInfo, _ db: Database) throws {
        var rows: [MetaKey: String] = [
            .schemaVersion: String(SessionSchema.version),
            .mode: info.mode.rawValue,
            .command: String(decoding: (try? JSONEncoder().encode(info.command)) ?? Data("[]".utf8), as: UTF8.self),
            .startRealtimeNs: String(info.startRealtimeNs),
            .startMonotonicNs: String(info.startMonotonicNs),
            .intervalMs: String(info.intervalMs),
            .host: info.host,
            .kernelRelease: info.kernelRelease,
        ]
        if let pid = info.pid { rows[.pid] = String(pid) }
        if let v = info.endRealtimeNs { rows[.endRealtimeNs] = String(v) }
        if let v = info.endMonotonicNs { rows[.endMonotonicNs] = String(v) }
        switch info.end {
        case .exited(let s)?:
            rows[.endReason] = "exited"
            rows[.exitStatus] = String(s)
        case .signaled(let sig)?:
            rows[.endReason] = "signaled"
            rows[.exitSignal] = String(sig)
        case .gone?: rows[.endReason] = "gone"
        case .detached?: rows[.endReason] = "detached"
        case .stopped?: rows[.endReason] = "stopped"
        case nil: break
        }
        for (k, v) in rows {
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [k.rawValue, v])
        }
    }

    private static func apply(_ b: SessionBatch, _ db: Database) throws {
        for m in b.modules {
            try db.execute(
                sql: "INSERT OR REPLACE INTO modules (id, path, build_id, bias, lo, hi, loaded_ns, unloaded_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [m.id, m.path, m.buildID, sqlInt(m.bias), sqlInt(m.lo), sqlInt(m.hi), sqlInt(m.loadedNs), m.unloadedNs.map(sqlInt)])
        }
        for u in b.moduleUnloads {
            try db.execute(sql: "UPDATE modules SET unloaded_ns = ? WHERE id = ?", arguments: [sqlInt(u.timeNs), u.id])
        }
        if !b.stacks.isEmpty {
            let stack = try db.makeStatement(sql: "INSERT OR REPLACE INTO stacks (id, origin, depth, truncated) VALUES (?, ?, ?, ?)")
            let frame = try db.makeStatement(
                sql: "INSERT OR REPLACE INTO frames (stack_id, idx, address, function, offset, module, file, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            for s in b.stacks {
                try stack.execute(arguments: [Int64(s.id), s.origin.rawValue, s.frames.count, s.truncated])
                for (i, f) in s.frames.enumerated() {
                    try frame.execute(arguments: [Int64(s.id), i, sqlInt(f.address), f.function, f.offset.map(sqlInt), f.module, f.file, f.line])
                }
            }
        }
        if !b.totals.isEmpty {
            let st = try db.makeStatement(
                sql: "INSERT OR REPLACE INTO stack_totals (stack_id, kind, bytes, blocks, total_bytes, total_blocks) VALUES (?, ?, ?, ?, ?, ?)")
            for t in b.totals {
                try st.execute(arguments: [Int64(t.stackID), t.kind.rawValue, sqlInt(t.bytes), sqlInt(t.blocks), sqlInt(t.totalBytes), sqlInt(t.totalBlocks)])
            }
        }
        if !b.liveDeletes.isEmpty {
            let st = try db.makeStatement(sql: "DELETE FROM live WHERE kind = ? AND address = ?")
            for k in b.liveDeletes { try st.execute(arguments: [k.kind.rawValue, sqlInt(k.address)]) }
        }
        if !b.liveUpserts.isEmpty {
            let st = try db.makeStatement(
                sql: "INSERT OR REPLACE INTO live (kind, address, size, stack_id, time_ns, function, tid, backing, pid, comm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for r in b.liveUpserts {
                try st.execute(arguments: [
                    r.kind.rawValue, sqlInt(r.address), sqlInt(r.size), Int64(r.stackID), sqlInt(r.timeNs), r.function.rawValue,
                    Int64(r.tid), r.backing?.rawValue, r.pid.map { Int64($0) }, r.comm,
                ])
            }
        }
        if !b.snapshot.isEmpty {
            let st = try db.makeStatement(sql: "INSERT OR REPLACE INTO snapshots (time_ns, stack_id, kind, bytes, blocks) VALUES (?, ?, ?, ?, ?)")
            for s in b.snapshot {
                try st.execute(arguments: [sqlInt(s.timeNs), Int64(s.stackID), s.kind.rawValue, sqlInt(s.bytes), sqlInt(s.blocks)])
            }
        }
        for (name, value) in b.counters {
            try db.execute(sql: "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", arguments: [name.rawValue, sqlInt(value)])
        }
        for rows in b.extra { try rows.write(to: db) }
        if b.timeNs != 0 {
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [MetaKey.lastFlushNs.rawValue, String(b.timeNs)])
        }
    }
}
