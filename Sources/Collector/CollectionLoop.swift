import Dispatch
import Foundation
import SessionStore

/// Anything that produces events for the tracker: the shim's ring, uprobes, the kernel's BPF programs.
public protocol EventSource: AnyObject {
    /// Applies the events available now to `tracker` and returns how many there were. Throws only for
    /// damage the source cannot read past (a corrupt ring); the loop then still writes what it has.
    func poll(into tracker: Tracker) throws -> Int
    /// Blocks until events may be available, or `timeoutNs` passes.
    func wait(timeoutNs: UInt64)
    /// Called once per loop turn, busy or idle (the ring's heartbeat).
    func tick()
    /// The source's own counters (lost_events and the like), absolute values.
    var counters: [CounterName: UInt64] { get }
    /// Rows of the source's own tables for this interval.
    func takeExtraRows() -> [any SessionRows]
}

extension EventSource {
    public func tick() {}
    public func takeExtraRows() -> [any SessionRows] { [] }
}

/// Why a collection loop stopped early.
public struct CollectionFailure: Error, CustomStringConvertible {
    public let description: String
}

/// Drives one collection: polls a source into the tracker on the calling thread, and every interval
/// cuts a batch that a writer thread symbolizes and writes. Symbolization and SQLite never stall the
/// event path, so the traced app does not wait on them.
public final class CollectionLoop {
    private let source: EventSource
    public let tracker: Tracker
    private let writer: SessionWriter
    private let intervalNs: UInt64
    private let writeQueue = DispatchQueue(label: "leakcollect.session-writer")
    private let symbolizer: Symbolizer
    /// First write failure, reported once the loop ends (guarded by writeQueue).
    private var writeError: SessionError?
    private var sourceError: Error?

    /// `kernelSymbols`: kallsyms as the source already read it, so it is not parsed a second time.
    public init(source: EventSource, tracker: Tracker, writer: SessionWriter, intervalNs: UInt64, kernelSymbols: KernelSymbols? = nil) {
        self.source = source
        self.symbolizer = Symbolizer(kernelSymbols: kernelSymbols)
        self.tracker = tracker
        self.writer = writer
        self.intervalNs = max(intervalNs, 10_000_000)
    }

    /// Runs until `shouldStop` says so (checked every turn), then drains the source once more and
    /// flushes. `shouldStop` gets whether the last poll found nothing, so a caller can stop only once
    /// the source is both finished and empty.
    public func run(shouldStop: (_ idle: Bool) -> Bool) {
        var nextFlush = monotonicNow() &+ intervalNs
        var idle = false
        while !shouldStop(idle) {
            source.tick()
            let n: Int
            do {
                n = try source.poll(into: tracker)
            } catch {
                sourceError = error
                break
            }
            idle = n == 0
            let now = monotonicNow()
            if now >= nextFlush {
                flush(at: now)
                nextFlush = now &+ intervalNs
            }
            if idle { source.wait(timeoutNs: min(10_000_000, nextFlush &- min(now, nextFlush))) }
        }
        if sourceError == nil {
            // Whatever arrived between the last poll and the stop.
            do {
                while try source.poll(into: tracker) > 0 {}
            } catch {
                sourceError = error
            }
        }
        flush(at: monotonicNow())
    }

    /// Cuts a batch now and hands it to the writer thread.
    public func flush(at time: UInt64) {
        var cut = tracker.cut(at: time)
        for (k, v) in source.counters { cut.batch.counters[k] = v }
        cut.batch.extra = source.takeExtraRows()
        let pending = cut
        writeQueue.async { [self] in
            var batch = pending.batch
            batch.stacks = pending.newStacks.map(symbolizer.symbolize)
            do throws(SessionError) {
                try writer.write(batch)
            } catch {
                if writeError == nil { writeError = error }
            }
        }
    }

    /// Waits for the writer, records how the session ended, and reports the first failure, if any.
    /// The source's failure (a corrupt ring) comes after everything collected before it is written.
    public func finish(end: SessionEnd?) throws {
        writeQueue.sync {}
        if let writeError { throw writeError }
        try writer.finish(end: end, endRealtimeNs: realtimeNow(), endMonotonicNs: monotonicNow())
        if let sourceError { throw sourceError }
    }
}
