import GRDB
import SessionStore

/// A row type of one kernel table. Its `CodingKeys` are the table's columns and the JSON reports'
/// field names; its properties' types and optionality are the columns' types and nullability. The
/// table's SQL (`TableShape`), inserts, strict reads and the JSON all derive from that one declaration.
public protocol KernelTableRow: Codable, Sendable {
    associatedtype Column: CodingKey
    static var tableName: String { get }
    /// Empty: a rowid table, whose rows keep the order they were written in.
    static var primaryKey: [Column] { get }
    /// What a row is and how values are spelled; the sqlite3 shell's `.schema` shows it in the table's statement.
    static var tableNote: String { get }
}

/// One column, as the row type declares it. Columns are in the order of the row type's `CodingKeys`
/// cases, which is the order its synthesized decoding asks for them.
public struct TableColumn: Sendable, Equatable {
    public var name: String
    public var storage: ColumnStorage
    public var nullable: Bool
}

/// A kernel table's columns in declaration order, found by decoding the row type once from a recorder,
/// and the SQL built from them.
public struct TableShape: Sendable {
    public let table: String
    public let columns: [TableColumn]
    public let primaryKey: [String]
    public let note: String

    public init<R: KernelTableRow>(_ type: R.Type) throws {
        let recorder = ShapeRecorder()
        _ = try R(from: CellDecoder(source: recorder))
        table = R.tableName
        columns = recorder.columns
        primaryKey = R.primaryKey.map(\.stringValue)
        note = R.tableNote
    }

    /// A composite key makes a WITHOUT ROWID table: its rows are found by the key alone. The note is a
    /// comment inside the statement, which SQLite keeps, so the sqlite3 shell's `.schema` shows it.
    public var createSQL: String {
        var defs = columns.map { c in
            var d = "    \(c.name) \(c.storage.rawValue)"
            if primaryKey == [c.name] { d += " PRIMARY KEY" }
            if !c.nullable { d += " NOT NULL" }
            return d
        }
        if primaryKey.count > 1 { defs.append("    PRIMARY KEY (\(primaryKey.joined(separator: ", ")))") }
        return "CREATE TABLE \(table) (\n    -- \(note)\n" + defs.joined(separator: ",\n") + "\n)" + (primaryKey.count > 1 ? " WITHOUT ROWID" : "") + ";"
    }

    var insertSQL: String {
        "INSERT OR REPLACE INTO \(table) (\(columns.map(\.name).joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))"
    }

    var selectSQL: String { "SELECT \(columns.map(\.name).joined(separator: ", ")) FROM \(table)" }

    /// Rowid tables read in the order rows were written.
    var writeOrder: String { primaryKey.count > 1 ? primaryKey.joined(separator: ", ") : "rowid" }
}

/// Records each column the row type asks for; optional properties ask `isNull` first.
private final class ShapeRecorder: CellSource {
    var columns: [TableColumn] = []
    private var asked: Set<String> = []

    func isNull(_ column: String) throws -> Bool {
        asked.insert(column)
        return false
    }

    func value<T: ColumnValue>(_ type: T.Type, _ column: String) throws -> T {
        columns.append(TableColumn(name: column, storage: T.storage, nullable: asked.contains(column)))
        return T.placeholder
    }
}

extension KernelTableRow {
    /// Writes rows, replacing those with the same primary key.
    static func insert(_ rows: [Self], into db: Database) throws {
        guard !rows.isEmpty else { return }
        let shape = try TableShape(Self.self)
        let statement = try db.cachedStatement(sql: shape.insertSQL)
        for row in rows {
            let cells = try CellEncoder.cells(of: row)
            try statement.execute(arguments: StatementArguments(shape.columns.map { cells[$0.name] ?? .null }))
        }
    }

    /// Every row, by `order` and then in the order written; any cell that does not hold what its
    /// column must throws (a corrupt session), never crashes.
    static func fetchAll(_ db: Database, orderedBy order: [Column] = []) throws -> [Self] {
        let shape = try TableShape(Self.self)
        let keys = order.map(\.stringValue) + [shape.writeOrder]
        return try Row.fetchAll(db, sql: shape.selectSQL + " ORDER BY " + keys.joined(separator: ", ")).map { row in
            try Self(from: CellDecoder(source: StoredRow(table: shape.table, row)))
        }
    }
}
