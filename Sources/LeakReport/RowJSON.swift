/// One JSON object with a stored row's fields and, beside them, fields a report adds: the row's
/// column names stay the one spelling of its fields (see KernelSession's `KernelTableRow`).
@dynamicMemberLookup
public struct RowJSON<Row: Codable & Equatable, Added: Codable & Equatable>: Codable, Equatable {
    public var row: Row
    public var added: Added

    public init(_ row: Row, _ added: Added) {
        self.row = row
        self.added = added
    }

    public init(from decoder: any Decoder) throws {
        row = try Row(from: decoder)
        added = try Added(from: decoder)
    }

    /// Both write keyed containers of the same encoder, which are one object.
    public func encode(to encoder: any Encoder) throws {
        try row.encode(to: encoder)
        try added.encode(to: encoder)
    }

    public subscript<T>(dynamicMember field: KeyPath<Row, T>) -> T { row[keyPath: field] }
    public subscript<T>(dynamicMember field: KeyPath<Added, T>) -> T { added[keyPath: field] }
}
