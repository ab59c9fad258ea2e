/// The name of a session counter. Each source declares the counters it keeps as static members, so
/// every name is spelled once.
public struct CounterName: RawRepresentable, Hashable, Sendable, Comparable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public static func < (a: CounterName, b: CounterName) -> Bool { a.rawValue < b.rawValue }

    /// Events the source dropped (ring full with no reader, or the wait bound reached). Must be 0.
    public static let lostEvents = CounterName("lost_events")
    /// Bytes of allocations whose events were dropped.
    public static let lostBytes = CounterName("lost_bytes")
    /// Every event the collector applied.
    public static let events = CounterName("events")
    /// Frees of addresses the collector never saw allocated (normal after an attach).
    public static let unmatchedFrees = CounterName("unmatched_frees")
    /// Allocations at an address that was still live: its free was missed. The old block is replaced.
    public static let missedFrees = CounterName("missed_frees")
    /// Stacks a frame-pointer walk (BPF-only mode) may have cut short: it ended outside every module.
    public static let stacksCutShort = CounterName("stacks_cut_short")
    /// Allocations whose stack the source never described; charged to the empty stack.
    public static let unknownStacks = CounterName("unknown_stacks")
}
