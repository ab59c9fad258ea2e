import SessionStore

/// The shim's ring as an event source for the collection loop.
public final class RingSource: EventSource {
    public let reader: RingReader
    /// How many records one poll takes at most, so the loop still flushes and heartbeats on time.
    private let batch: Int

    public init(reader: RingReader, batch: Int = 1 << 16) {
        self.reader = reader
        self.batch = batch
    }

    public func poll(into tracker: Tracker) throws -> Int {
        try reader.drain(maxRecords: batch) { tracker.apply($0) }.records
    }

    public func wait(timeoutNs: UInt64) {
        _ = reader.sleepUntilData(timeout: .nanoseconds(Int64(min(timeoutNs, UInt64(Int64.max)))))
    }

    public func tick() { reader.heartbeat() }

    public var counters: [CounterName: UInt64] {
        let c = reader.counters
        return [
            .lostEvents: c.lostEvents, .lostBytes: c.lostBytes, .ringWaits: c.waits, .reentrantCalls: c.reentrantCalls,
            .stackTableFull: c.stackTableFull, .truncatedStacks: c.truncatedStacks, .ringWaitNs: c.waitNs,
            .unwindMismatches: c.unwindMismatches, .unwindFallbacks: c.unwindFallbacks,
        ]
    }
}

extension CounterName {
    /// Times a writer in the app waited for the collector on a full ring.
    public static let ringWaits = CounterName("ring_waits")
    /// Nanoseconds the app's threads spent waiting for the collector on a full ring, summed over threads.
    public static let ringWaitNs = CounterName("ring_wait_ns")
    /// LEAKSHIM_UNWIND=compare: stacks where the shim's own walk and libunwind's differed.
    public static let unwindMismatches = CounterName("unwind_mismatches")
    /// Stacks the shim's own walk handed to libunwind (unwind information it does not model).
    public static let unwindFallbacks = CounterName("unwind_fallbacks")
    /// Allocator calls made while the shim itself was running (its own bookkeeping); not tracked.
    public static let reentrantCalls = CounterName("reentrant_calls")
    /// Allocations charged to no stack because the shim's stack table was full.
    public static let stackTableFull = CounterName("stack_table_full")
    /// Stacks cut at the depth limit.
    public static let truncatedStacks = CounterName("truncated_stacks")
}
