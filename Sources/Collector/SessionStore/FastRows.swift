import Foundation
import GRDB
import GRDBSQLite

/// Steps a prepared GRDB statement's result rows through SQLite's C API directly, the reading side of
/// `FastStatement`: a live view reads the stacks and stack-tree rows a collector added, tens of
/// thousands per refresh at scale, and GRDB's `Row` (a NULL check and a generic conversion per column,
/// a `Data` per blob) cost several times SQLite's own work.
struct FastRows {
    private let s: OpaquePointer

    /// Binds `arguments` (integers) to `statement`; the rows are then read with `forEach`.
    init(_ statement: Statement, _ arguments: Int64...) throws {
        s = statement.sqliteStatement
        sqlite3_reset(s)
        for (i, v) in arguments.enumerated() {
            let rc = sqlite3_bind_int64(s, Int32(i + 1), v)
            guard rc == SQLITE_OK else { throw FastStatementError(code: rc, message: String(cString: sqlite3_errstr(rc))) }
        }
    }

    /// Calls `body` with each row, in the statement's order.
    func forEach(_ body: (Row) throws -> Void) throws {
        defer {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
        }
        while true {
            let rc = sqlite3_step(s)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw FastStatementError(code: rc, message: String(cString: sqlite3_errmsg(sqlite3_db_handle(s)))) }
            try body(Row(s: s))
        }
    }

    /// The current row; valid only inside `forEach`'s body.
    struct Row {
        fileprivate let s: OpaquePointer

        /// A cell of the wrong type is a damaged session, as GRDB's decoding says: refused, not converted.
        private func check(_ i: Int32, _ type: Int32, _ what: String) throws(BlobError) {
            guard sqlite3_column_type(s, i) == type else { throw BlobError("column \(i) is not \(what)") }
        }
        func isNull(_ i: Int32) -> Bool { sqlite3_column_type(s, i) == SQLITE_NULL }
        func int(_ i: Int32) throws(BlobError) -> Int64 {
            try check(i, SQLITE_INTEGER, "an integer")
            return sqlite3_column_int64(s, i)
        }
        func optionalInt(_ i: Int32) throws(BlobError) -> Int64? { isNull(i) ? nil : try int(i) }
        func bool(_ i: Int32) throws(BlobError) -> Bool { try int(i) != 0 }
        /// A text column; nil for NULL.
        func text(_ i: Int32) throws(BlobError) -> String? {
            if isNull(i) { return nil }
            try check(i, SQLITE_TEXT, "text")
            guard let p = sqlite3_column_text(s, i) else { return nil }
            return String(cString: p)
        }
        /// A blob column's bytes, valid until the next step.
        func blob(_ i: Int32) throws(BlobError) -> UnsafeRawBufferPointer {
            try check(i, SQLITE_BLOB, "a blob")
            guard let p = sqlite3_column_blob(s, i) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
            return UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, i)))
        }
    }
}
