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

    /// Blocks (and their bytes) that were live when the collector attached, read from the shim's live table.
    public static let snapshotBlocks = CounterName("snapshot_blocks")
    public static let snapshotBytes = CounterName("snapshot_bytes")
    /// Times the collector made its live blocks those of the source's own table after events were lost.
    public static let resyncs = CounterName("resyncs")
    /// CLOCK_MONOTONIC when the app unmapped its own ring: nothing after it was tracked.
    public static let ringUnmappedNs = CounterName("ring_unmapped_ns")
    /// Blocks a resync removed (their frees were lost) and added (their allocations were lost).
    public static let resyncRemovedBlocks = CounterName("resync_removed_blocks")
    public static let resyncAddedBlocks = CounterName("resync_added_blocks")
    /// CLOCK_MONOTONIC when the collector first saw events lost, and when the last resync ran.
    public static let resyncFirstLossNs = CounterName("resync_first_loss_ns")
    public static let resyncLastNs = CounterName("resync_last_ns")
    /// Polls the resyncs' reads of the source's table were spread over, the ring drained between them.
    public static let resyncSlices = CounterName("resync_slices")
    /// Live-table slots that never held still while read, or named a stack the table lacks.
    public static let liveTableUnreadableSlots = CounterName("live_table_unreadable_slots")
    public static let liveTableUnknownStacks = CounterName("live_table_unknown_stacks")
    /// Allocations the shim's live table could not hold (a snapshot lacks them).
    public static let liveTableFull = CounterName("live_table_full")
}
