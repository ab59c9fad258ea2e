import Foundation
import GRDB
import GRDBSQLite

/// Binds and steps a prepared GRDB statement through SQLite's C API directly. The writer inserts a row
/// per stack and per stack total, hundreds of thousands per interval at scale, and GRDB's
/// `StatementArguments` (an array of existential values per row) costs several times SQLite's own work.
struct FastStatement {
    private let statement: Statement

    init(_ statement: Statement) { self.statement = statement }

    /// A value to bind: integers, text, a blob, or NULL.
    enum Value {
        case int(Int64)
        case text(String)
        case blob([UInt8])
        case null
    }

    func execute(_ values: Value...) throws { try execute(values) }

    func execute(_ values: [Value]) throws {
        let s = statement.sqliteStatement
        defer {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
        }
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case .int(let n): rc = sqlite3_bind_int64(s, index, n)
            case .null: rc = sqlite3_bind_null(s, index)
            case .text(let t):
                // SQLITE_TRANSIENT: SQLite copies the bytes before this call returns.
                rc = sqlite3_bind_text(s, index, t, -1, Self.transient)
            case .blob(let b):
                rc = b.withUnsafeBytes { sqlite3_bind_blob(s, index, $0.baseAddress, Int32($0.count), Self.transient) }
            }
            guard rc == SQLITE_OK else { throw FastStatementError(code: rc, message: String(cString: sqlite3_errstr(rc))) }
        }
        let rc = sqlite3_step(s)
        guard rc == SQLITE_DONE else { throw FastStatementError(code: rc, message: String(cString: sqlite3_errmsg(sqlite3_db_handle(s)))) }
    }

    private static let transient = unsafeBitCast(Int(-1), to: sqlite3_destructor_type.self)
}

/// An SQLite failure while stepping a fast statement.
struct FastStatementError: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    var description: String { "\(message) (SQLite error \(code))" }
}

extension FastStatement.Value {
    static func unsigned(_ v: UInt64) -> Self { .int(Int64(bitPattern: v)) }
    static func optional(_ v: Int64?) -> Self { v.map { .int($0) } ?? .null }
    static func optional(_ v: String?) -> Self { v.map { .text($0) } ?? .null }
    static func bool(_ b: Bool) -> Self { .int(b ? 1 : 0) }
}
