import GRDB
import GRDBSQLite

/// A session's file bytes loaded into an in-memory SQLite database: how the fuzzer reads and edits
/// sessions without writing, opening and locking a file per input.
public enum SessionBytes {
    /// Replaces `db`'s main database with a copy of `bytes`, which SQLite then owns and frees; read-only
    /// unless `writable`.
    public static func load(_ bytes: UnsafeRawBufferPointer, into db: Database, writable: Bool = false) throws {
        guard let copy = sqlite3_malloc64(UInt64(max(bytes.count, 1)))?.assumingMemoryBound(to: UInt8.self) else {
            throw DatabaseError(resultCode: .SQLITE_NOMEM, message: "no memory for a \(bytes.count)-byte session")
        }
        if let base = bytes.baseAddress { copy.update(from: base.assumingMemoryBound(to: UInt8.self), count: bytes.count) }
        // SQLite's in-memory files have no WAL: a WAL-mode file (read and write versions 2) with no -wal
        // beside it reads the same as a rollback-journal one, which these bytes are.
        if bytes.count > 19, copy[18] == 2, copy[19] == 2 {
            copy[18] = 1
            copy[19] = 1
        }
        let size = Int64(bytes.count)
        var flags = UInt32(SQLITE_DESERIALIZE_FREEONCLOSE)
        flags |= writable ? UInt32(SQLITE_DESERIALIZE_RESIZEABLE) : UInt32(SQLITE_DESERIALIZE_READONLY)
        // On failure SQLite frees the copy itself (FREEONCLOSE).
        let rc = sqlite3_deserialize(db.sqliteConnection, "main", copy, size, size, flags)
        guard rc == SQLITE_OK else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
        db.clearSchemaCache()
    }

    /// Calls `body` with `db`'s main database as file bytes, without copying them when SQLite can
    /// (an in-memory database); they are valid only during `body`.
    public static func withBytes<T>(of db: Database, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        var size: Int64 = 0
        if let p = sqlite3_serialize(db.sqliteConnection, "main", &size, UInt32(SQLITE_SERIALIZE_NOCOPY)) {
            return try body(UnsafeRawBufferPointer(start: p, count: Int(size)))
        }
        guard let copy = sqlite3_serialize(db.sqliteConnection, "main", &size, 0) else {
            throw DatabaseError(resultCode: .SQLITE_NOMEM, message: "cannot serialize the database")
        }
        defer { sqlite3_free(copy) }
        return try body(UnsafeRawBufferPointer(start: copy, count: Int(size)))
    }
}

extension SessionReader {
    /// Reads a session held in memory: the bytes a session file would hold, checked and read exactly as
    /// a file is (its header against its size, then everything `init(queue:path:)` checks), with no file
    /// written or opened. `name` stands for the path in errors.
    public convenience init(bytes: UnsafeRawBufferPointer, name: String) throws(SessionError) {
        try SessionHeader.check(Array(bytes.prefix(SessionHeader.length)), size: UInt64(bytes.count), hasWAL: false, path: name)
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(configuration: Self.configuration)
            try queue.inDatabase { db in try SessionBytes.load(bytes, into: db) }
        } catch {
            throw Self.classify(error, path: name)
        }
        try self.init(queue: queue, path: name)
    }
}
