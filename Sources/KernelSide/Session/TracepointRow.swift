import SessionStore

/// A tracepoint the collector tried to attach, and what became of it.
public struct TracepointRow: KernelTableRow, Equatable {
    /// What became of the attach; the raw values are the session's spelling.
    public enum Status: String, Sendable, CaseIterable, ColumnValue {
        case attached
        /// Not on this kernel.
        case missing
        /// An older name of a tracepoint that is attached (the `_node` variants before 6.1).
        case replaced
        case failed
    }

    /// "category:name", as in tracefs.
    public var name: String
    public var status: Status
    public var detail: String?

    public init(name: String, status: Status, detail: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
    }

    public static let tableName = "tracepoints"
    public static let primaryKey: [CodingKeys] = [.name]
    public static let tableNote = """
        Every tracepoint the collector tried. status: 'attached', 'missing' (not on this kernel), \
        'replaced' (an older name of one that is attached) or 'failed'.
        """
    public typealias Column = CodingKeys
    public enum CodingKeys: String, CodingKey {
        case name, status, detail
    }
}

