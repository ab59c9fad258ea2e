import Foundation
import GRDB
import SessionStore

/// The SQLite storage class a kernel table's column holds, and the column type its table declares.
public enum ColumnStorage: String, Sendable {
    case integer = "INTEGER"
    case text = "TEXT"

    var noun: String { self == .integer ? "an integer" : "text" }
}

/// A value a kernel table's column holds, with its one way in and out of SQLite.
///
/// Why not GRDB's `DatabaseValueConvertible`: it turns REAL cells into integers (truncating), reads a
/// `UInt64` only when the stored integer is non-negative and traps storing one above `Int64.max`. The
/// session keeps unsigned values by bit pattern (`sqlInt`), and a cell of another storage class than its
/// column's is a corrupt session, so these conversions are exact and throw.
public protocol ColumnValue: Codable {
    static var storage: ColumnStorage { get }
    /// Any value of the type: what the table's shape is discovered with (see `TableShape`).
    static var placeholder: Self { get }
    init(cell: DatabaseValue) throws
    var cell: DatabaseValue { get }
}

extension ColumnValue {
    /// The integer in a cell, or a `CellError`.
    static func integer(_ cell: DatabaseValue) throws -> Int64 {
        guard case .int64(let v) = cell.storage else { throw CellError(found: cell, expected: .integer) }
        return v
    }

    static func exactly<T: FixedWidthInteger>(_ cell: DatabaseValue, as _: T.Type) throws -> T {
        let v = try integer(cell)
        guard let t = T(exactly: v) else { throw CellError(found: cell, expected: .integer, detail: "out of range for \(T.self)") }
        return t
    }
}

extension UInt64: ColumnValue {
    public static var storage: ColumnStorage { .integer }
    public static var placeholder: UInt64 { 0 }
    public init(cell: DatabaseValue) throws { self = sqlUInt(try Self.integer(cell)) }
    public var cell: DatabaseValue { sqlInt(self).databaseValue }
}

extension Int64: ColumnValue {
    public static var storage: ColumnStorage { .integer }
    public static var placeholder: Int64 { 0 }
    public init(cell: DatabaseValue) throws { self = try Self.integer(cell) }
    public var cell: DatabaseValue { databaseValue }
}

extension Int32: ColumnValue {
    public static var storage: ColumnStorage { .integer }
    public static var placeholder: Int32 { 0 }
    public init(cell: DatabaseValue) throws { self = try Self.exactly(cell, as: Int32.self) }
    public var cell: DatabaseValue { Int64(self).databaseValue }
}

extension UInt32: ColumnValue {
    public static var storage: ColumnStorage { .integer }
    public static var placeholder: UInt32 { 0 }
    public init(cell: DatabaseValue) throws { self = try Self.exactly(cell, as: UInt32.self) }
    public var cell: DatabaseValue { Int64(self).databaseValue }
}

extension Int: ColumnValue {
    public static var storage: ColumnStorage { .integer }
    public static var placeholder: Int { 0 }
    public init(cell: DatabaseValue) throws { self = try Self.exactly(cell, as: Int.self) }
    public var cell: DatabaseValue { Int64(self).databaseValue }
}

extension Bool: ColumnValue {
    public static var storage: ColumnStorage { .integer }
    public static var placeholder: Bool { false }
    public init(cell: DatabaseValue) throws {
        switch try Self.integer(cell) {
        case 0: self = false
        case 1: self = true
        default: throw CellError(found: cell, expected: .integer, detail: "not 0 or 1")
        }
    }
    public var cell: DatabaseValue { (self ? 1 : 0 as Int64).databaseValue }
}

extension String: ColumnValue {
    public static var storage: ColumnStorage { .text }
    public static var placeholder: String { "" }
    public init(cell: DatabaseValue) throws {
        guard case .string(let s) = cell.storage else { throw CellError(found: cell, expected: .text) }
        self = s
    }
    public var cell: DatabaseValue { databaseValue }
}

/// Named counters (/proc/meminfo's kB figures) are one TEXT cell: a JSON object with sorted keys.
extension Dictionary: ColumnValue where Key == String, Value == UInt64 {
    public static var storage: ColumnStorage { .text }
    public static var placeholder: [String: UInt64] { [:] }
    public init(cell: DatabaseValue) throws {
        let text = try String(cell: cell)
        do {
            self = try JSONDecoder().decode([String: UInt64].self, from: Data(text.utf8))
        } catch {
            throw CellError(found: cell, expected: .text, detail: "not a JSON object of unsigned integers")
        }
    }
    public var cell: DatabaseValue {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        // Encoding a [String: UInt64] cannot fail; "{}" only keeps the conversion total.
        return (String(data: (try? e.encode(self)) ?? Data("{}".utf8), encoding: .utf8) ?? "{}").databaseValue
    }
}

/// A closed set of names (reclaim kinds, reaper steps, tracepoint states) is a TEXT cell of its raw value;
/// any other text is corrupt.
extension ColumnValue where Self: RawRepresentable & CaseIterable, RawValue == String {
    public static var storage: ColumnStorage { .text }
    public static var placeholder: Self { allCases[allCases.startIndex] }
    public init(cell: DatabaseValue) throws {
        let text = try String(cell: cell)
        guard let v = Self(rawValue: text) else {
            throw CellError(found: cell, expected: .text, detail: "not one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = v
    }
    public var cell: DatabaseValue { rawValue.databaseValue }
}

/// A cell that does not hold what its column must: the session is corrupt. `TableCoding` adds the
/// table and column to the message.
struct CellError: Error {
    var found: DatabaseValue
    var expected: ColumnStorage
    var detail: String?

    /// "holds text 'abc', expected an integer".
    var description: String {
        let what: String
        switch found.storage {
        case .null: what = "NULL"
        case .int64(let v): what = "the integer \(v)"
        case .double(let v): what = "the real \(v)"
        case .string(let s): what = "text '\(s.prefix(40).split(whereSeparator: \.isNewline).joined(separator: " "))'"
        case .blob(let d): what = "a \(d.count)-byte blob"
        }
        return "holds \(what), expected \(expected.noun)" + (detail.map { " (\($0))" } ?? "")
    }
}
