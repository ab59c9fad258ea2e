import Foundation
import GRDB
import Glibc
import SessionStore

/// A real session (tools/fuzz/corpus/session/demo or kernel, or those LEAKFUZZ_SESSION_BASES names,
/// colon-separated) with cells changed the way anyone with sqlite3 can change them (the edits are made
/// in memory, in `editor`), then read like `SessionTarget`. Mutating the SQLite bytes mostly yields
/// "database disk image is malformed"; this reaches the decoders with well-formed files holding the
/// wrong types, NULLs, extreme integers, stray text and blobs, and missing rows.
///
/// The input's first byte picks the base session; the rest is a list of edits of 4 bytes and a value:
/// table, column and row (each taken modulo what
/// the base session has), then the value's kind: 0 NULL, 1 a little-endian Int64 (8 bytes), 2 a Double
/// (8 bytes), 3 text and 4 a blob (a length byte, then that many bytes), 5 an extreme integer (1 byte
/// picks it), 6 deletes the row instead.
enum SessionEditTarget {
    struct Table {
        var name: String
        var columns: [String]
        /// Its primary key, "rowid" for most; a WITHOUT ROWID table's own columns.
        var key: [String]
    }

    struct Base {
        var bytes: [UInt8]
        var tables: [Table]
    }

    static let basePaths = (getenv("LEAKFUZZ_SESSION_BASES").map { String(cString: $0) }
        ?? "tools/fuzz/corpus/session/demo:tools/fuzz/corpus/session/kernel").split(separator: ":").map(String.init)

    static let bases: [Base] = basePaths.enumerated().map { i, basePath in
        guard let data = FileManager.default.contents(atPath: basePath) else {
            fputs("leakfuzz: cannot read the base session \(basePath) (run from the repository root, or set LEAKFUZZ_SESSION_BASES)\n", stderr)
            exit(2)
        }
        let bytes = [UInt8](data)
        do {
            let tables = try bytes.withUnsafeBytes { raw in
                try editor.inDatabase { db -> [Table] in
                    try SessionBytes.load(raw, into: db)
                    return try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                        .map { name in
                            Table(name: name, columns: try db.columns(in: name).map(\.name), key: try db.primaryKey(name).columns)
                        }
                }
            }
            return Base(bytes: bytes, tables: tables.filter { !$0.columns.isEmpty && !$0.key.isEmpty })
        } catch {
            fputs("leakfuzz: the base session \(basePath) does not open: \(error)\n", stderr)
            exit(2)
        }
    }

    /// The one in-memory database every input's edits are made in: each input loads its base session
    /// afresh, so nothing of one input's edits outlives it, and no file or journal is written.
    static let editor: DatabaseQueue = {
        do {
            return try DatabaseQueue()
        } catch {
            fputs("leakfuzz: cannot open an in-memory database: \(error)\n", stderr)
            exit(2)
        }
    }()

    static let extremes: [Int64] = [0, 1, -1, Int64.max, Int64.min, 1 << 31, 1 << 32, -(1 << 31), 1 << 53, Int64(UInt32.max)]

    static func run(_ input: UnsafeRawBufferPointer) {
        var r = Reader(input)
        let base = bases[Int(r.byte() ?? 0) % bases.count]
        let tables = base.tables
        guard !tables.isEmpty else { return }
        do {
            try editor.inDatabase { db in
                try base.bytes.withUnsafeBytes { try SessionBytes.load($0, into: db, writable: true) }
                try db.inTransaction {
                    while let t = r.byte(), let c = r.byte(), let row = r.byte(), let kind = r.byte() {
                        let table = tables[Int(t) % tables.count]
                        let column = table.columns[Int(c) % table.columns.count]
                        let key = table.key.map { "\"\($0)\"" }.joined(separator: ", ")
                        let target = "(\(key)) = (SELECT \(key) FROM \"\(table.name)\" LIMIT 1 OFFSET \(row))"
                        let value: DatabaseValue
                        switch kind % 7 {
                        case 0: value = .null
                        case 1: value = r.int64().databaseValue
                        case 2: value = Double(bitPattern: UInt64(bitPattern: r.int64())).databaseValue
                        case 3: value = String(decoding: r.bytes(Int(r.byte() ?? 0)), as: UTF8.self).databaseValue
                        case 4: value = Data(r.bytes(Int(r.byte() ?? 0))).databaseValue
                        case 5: value = extremes[Int(r.byte() ?? 0) % extremes.count].databaseValue
                        default:
                            try? db.execute(sql: "DELETE FROM \"\(table.name)\" WHERE \(target)")
                            continue
                        }
                        // A value the column's constraints refuse is simply not written, as sqlite3 would refuse it.
                        try? db.execute(sql: "UPDATE \"\(table.name)\" SET \"\(column)\" = ? WHERE \(target)", arguments: [value])
                    }
                    return .commit
                }
                try SessionBytes.withBytes(of: db) { SessionTarget.run($0) }
            }
        } catch {
            return
        }
    }

    /// Reads the edit list; past the end every read gives nil, zero or nothing.
    struct Reader {
        let input: UnsafeRawBufferPointer
        var at = 0
        init(_ input: UnsafeRawBufferPointer) { self.input = input }

        mutating func byte() -> UInt8? {
            guard at < input.count else { return nil }
            defer { at += 1 }
            return input[at]
        }

        mutating func bytes(_ n: Int) -> [UInt8] {
            let end = min(at + n, input.count)
            defer { at = end }
            return Array(input[at..<end])
        }

        mutating func int64() -> Int64 {
            var v: UInt64 = 0
            for (i, b) in bytes(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            return Int64(bitPattern: v)
        }
    }
}
