import GRDB
import SessionStore

/// Where a row's cells come from when a row type decodes itself: a stored row, or `TableShape`'s
/// recorder. One keyed container serves both, so the row types' Codable conformance is the only
/// declaration of their columns.
protocol CellSource {
    /// Whether the column holds NULL (asked only for optional properties).
    func isNull(_ column: String) throws -> Bool
    func value<T: ColumnValue>(_ type: T.Type, _ column: String) throws -> T
}

/// A `Decoder` over one `CellSource`; rows are flat, so only the keyed container exists.
struct CellDecoder<Source: CellSource>: Decoder {
    let source: Source
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(CellDecodingContainer<Key, Source>(source: source))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw BlobError("a kernel table row is not a list") }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { throw BlobError("a kernel table row is not one value") }
}

struct CellDecodingContainer<Key: CodingKey, Source: CellSource>: KeyedDecodingContainerProtocol {
    let source: Source
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { [] }

    /// Every column is expected: a missing one is an error from `value`, not a silent nil.
    func contains(_ key: Key) -> Bool { true }
    func decodeNil(forKey key: Key) throws -> Bool { try source.isNull(key.stringValue) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let column = T.self as? any ColumnValue.Type else { throw BlobError("\(T.self) is not a column type") }
        guard let v = try source.value(column, key.stringValue) as? T else { throw BlobError("\(T.self) is not a column type") }
        return v
    }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try source.value(type, key.stringValue) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try source.value(type, key.stringValue) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try source.value(type, key.stringValue) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try source.value(type, key.stringValue) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try source.value(type, key.stringValue) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try source.value(type, key.stringValue) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try source.value(type, key.stringValue) }
    // Types no kernel table uses.
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { throw unsupported(type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw unsupported(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { throw unsupported(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { throw unsupported(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { throw unsupported(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { throw unsupported(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { throw unsupported(type) }

    func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> { throw flat }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { throw flat }
    func superDecoder() throws -> any Decoder { throw flat }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw flat }

    private var flat: BlobError { BlobError("kernel table rows are flat") }
    private func unsupported(_ t: Any.Type) -> BlobError { BlobError("\(t) is not a column type") }
}

/// The cells of one stored row, decoded strictly (see `ColumnValue`).
struct StoredRow: CellSource {
    let table: String
    let cells: [String: DatabaseValue]

    init(table: String, _ row: Row) {
        self.table = table
        cells = Dictionary(zip(row.columnNames, row.databaseValues), uniquingKeysWith: { a, _ in a })
    }

    private func cell(_ column: String) throws -> DatabaseValue {
        guard let c = cells[column] else { throw BlobError("\(table) has no column \(column)") }
        return c
    }

    func isNull(_ column: String) throws -> Bool { try cell(column).isNull }

    func value<T: ColumnValue>(_ type: T.Type, _ column: String) throws -> T {
        let c = try cell(column)
        do {
            return try T(cell: c)
        } catch let e as CellError {
            throw BlobError("\(table).\(column) \(e.description)")
        }
    }
}

/// An `Encoder` that collects a row's cells by column name. A nil optional leaves its column out; the
/// insert binds NULL for it.
final class CellEncoder: Encoder {
    var cells: [String: DatabaseValue] = [:]
    /// Set when the row holds something that is not a column value (a programming error, surfaced as a throw).
    var failure: String?
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func cells<R: Encodable>(of row: R) throws -> [String: DatabaseValue] {
        let e = CellEncoder()
        try row.encode(to: e)
        if let f = e.failure { throw BlobError(f) }
        return e.cells
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(CellEncodingContainer<Key>(encoder: self))
    }
    // Rows are structs with keyed, synthesized encoding; nothing asks a row for these.
    func unkeyedContainer() -> any UnkeyedEncodingContainer { preconditionFailure("kernel table rows are keyed") }
    func singleValueContainer() -> any SingleValueEncodingContainer { preconditionFailure("kernel table rows are keyed") }
}

struct CellEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: CellEncoder
    var codingPath: [any CodingKey] { [] }

    private func put(_ v: some ColumnValue, _ key: Key) { encoder.cells[key.stringValue] = v.cell }

    mutating func encodeNil(forKey key: Key) throws { encoder.cells[key.stringValue] = .null }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        guard let v = value as? any ColumnValue else { throw BlobError("\(T.self) is not a column type") }
        put(v, key)
    }
    mutating func encode(_ value: Bool, forKey key: Key) throws { put(value, key) }
    mutating func encode(_ value: String, forKey key: Key) throws { put(value, key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { put(value, key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { put(value, key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { put(value, key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { put(value, key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { put(value, key) }
    // Types no kernel table uses.
    mutating func encode(_ value: Double, forKey key: Key) throws { throw unsupported(Double.self) }
    mutating func encode(_ value: Float, forKey key: Key) throws { throw unsupported(Float.self) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { throw unsupported(Int8.self) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { throw unsupported(Int16.self) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { throw unsupported(UInt.self) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { throw unsupported(UInt8.self) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { throw unsupported(UInt16.self) }

    mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type, forKey key: Key) -> KeyedEncodingContainer<N> {
        encoder.failure = "kernel table rows are flat"
        return KeyedEncodingContainer(CellEncodingContainer<N>(encoder: CellEncoder()))
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { preconditionFailure("kernel table rows are flat") }
    mutating func superEncoder() -> any Encoder {
        encoder.failure = "kernel table rows are flat"
        return CellEncoder()
    }
    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder() }

    private func unsupported(_ t: Any.Type) -> BlobError { BlobError("\(t) is not a column type") }
}
