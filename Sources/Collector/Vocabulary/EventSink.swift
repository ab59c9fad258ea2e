/// Where a source's decoder delivers events: the one narrow entry, as methods. The tracker's sink for a
/// space applies them directly (no `Event` value is built for the millions of allocations and frees);
/// a list sink collects `Event`s for tests and tools. Rare events (stacks, modules, records) arrive as
/// `Event`s through `event(_:)`.
public protocol EventSink {
    mutating func alloc(_ a: Allocation) throws
    mutating func free(address: UInt64, kind: BlockKind, pending: Bool) throws
    mutating func unmap(address: UInt64, length: UInt64, pending: Bool) throws
    mutating func undo(address: UInt64, kind: BlockKind) throws
    mutating func event(_ e: Event) throws
    /// Where the event for the block at `address` will look first, so that a source decoding a batch can
    /// fetch it into the cache a few records ahead (every look-up in ten million live blocks is a miss).
    /// nil: nothing worth fetching. A hint only: the memory may change before the event arrives.
    func lookupHint(address: UInt64, kind: BlockKind) -> UnsafeRawPointer?
    /// Whether `lookupHint` is worth asking at all: a table that fits the cache gains nothing from a
    /// prefetch, and the look-ahead that finds the addresses costs a few nanoseconds per record.
    var hintsWorthFetching: Bool { get }
}

extension EventSink {
    public func lookupHint(address: UInt64, kind: BlockKind) -> UnsafeRawPointer? { nil }
    public var hintsWorthFetching: Bool { false }

    /// Delivers any event through the method for its kind.
    public mutating func deliver(_ e: Event) throws {
        switch e {
        case .alloc(let a): try alloc(a)
        case .free(let address, let kind, let pending): try free(address: address, kind: kind, pending: pending)
        case .unmap(let address, let length, let pending): try unmap(address: address, length: length, pending: pending)
        case .undo(let address, let kind): try undo(address: address, kind: kind)
        default: try event(e)
        }
    }
}

/// A sink that hands every event, as an `Event`, to a closure.
public struct ClosureSink: EventSink {
    private let body: (Event) throws -> Void

    public init(_ body: @escaping (Event) throws -> Void) { self.body = body }

    public mutating func alloc(_ a: Allocation) throws { try body(.alloc(a)) }
    public mutating func free(address: UInt64, kind: BlockKind, pending: Bool) throws {
        try body(.free(address: address, kind: kind, pending: pending))
    }
    public mutating func unmap(address: UInt64, length: UInt64, pending: Bool) throws {
        try body(.unmap(address: address, length: length, pending: pending))
    }
    public mutating func undo(address: UInt64, kind: BlockKind) throws { try body(.undo(address: address, kind: kind)) }
    public mutating func event(_ e: Event) throws { try body(e) }
}
