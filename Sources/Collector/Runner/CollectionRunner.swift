import Dispatch
import Foundation
import SessionStore
import Symbols
import Tracking
import Vocabulary

/// How a collection runs, whatever its source.
public struct RunnerOptions {
    /// Between flushes (per-stack totals, history, checkpoints). At least 10 ms; the CLI checks.
    public var intervalNs: UInt64
    /// Stop (detach) after this long.
    public var durationNs: UInt64?
    /// Frames kept per stack.
    public var maxDepth: Int?
    /// kallsyms as a kernel source already read it, so the symbolizer does not read it again.
    public var kernelSymbols: KernelSymbols?
    /// Schema parts besides the core tables (the kernel side's).
    public var schemaParts: [any SchemaPart.Type] = []
    /// Permission bits of the session file (0600 when the traced process is another user's).
    public var fileMode: mode_t = 0o644
    /// Progress notes (the CLI prints them on stderr).
    public var log: (String) -> Void = { _ in }

    public init(intervalNs: UInt64 = 1_000_000_000, durationNs: UInt64? = nil) {
        self.intervalNs = intervalNs
        self.durationNs = durationNs
    }
}

/// What a finished collection produced.
public struct CollectionResult {
    public var sessionPath: String
    public var end: SessionEnd?
    /// Set when the collection stopped on an error after collecting something: the session holds
    /// everything up to it, and the CLI still exits non-zero with this line.
    public var failure: String?
    public var outstanding: (bytes: UInt64, blocks: UInt64)
    public var counters: [CounterName: UInt64]
}

/// The one collection runner: every mode (launch, attach, BPF, kernel) is a source plugged into it.
/// It polls the source into the tracker on the calling thread and, every interval, cuts a batch that a
/// writer thread writes. New stacks go to a symbolizer thread as they arrive (`SymbolizingStage`), so
/// the end of the program leaves little to symbolize. At most one batch is in flight: while the writer is busy the
/// tracker keeps accumulating (the cut is deferred and counted), so memory stays bounded and the event
/// path never waits on SQLite or the symbolizer. Stop signals and the duration are handled here.
public final class CollectionRunner {
    private let source: EventSource
    public let tracker: Tracker
    private let path: String
    private var info: SessionInfo
    private let options: RunnerOptions
    private let writeQueue = DispatchQueue(label: "leakcollect.session-writer")
    private let writerIdle = DispatchSemaphore(value: 1)
    private let symbols: SymbolizingStage
    /// The number of the batch the next cut makes; stacks handed to the symbolizer before it belong to it.
    private var batchNumber: UInt64 = 1
    /// The last write failure, while batches cannot be written (guarded by the writer queue).
    private var writeError: SessionError?
    /// What could not be written yet (disk full, say), merged with every later batch until a write
    /// succeeds (guarded by the writer queue). Collection goes on in memory meanwhile.
    private var carried: SessionBatch?
    private var failedWrites = 0
    /// When the last batch that reached the file was cut.
    private var writtenUpToNs: UInt64 = 0
    /// The session file was removed or replaced (its directory too, maybe) while we wrote it.
    private var fileLost = false
    private var deferredFlushes: UInt64 = 0
    private var writerWaitNs: UInt64 = 0
    /// CPU time of the writer thread (guarded by the writer queue).
    private var writerCPUNs: UInt64 = 0

    public init(source: EventSource, sessionPath: String, info: SessionInfo, options: RunnerOptions) {
        self.source = source
        self.path = sessionPath
        self.info = info
        self.options = options
        tracker = Tracker(maxDepth: options.maxDepth ?? Int.max, now: info.startMonotonicNs)
        symbols = SymbolizingStage(Symbolizer(kernelSymbols: options.kernelSymbols))
    }

    /// Creates the session, runs the collection to its end and writes everything. Throws only when the
    /// session cannot be created or the source cannot begin: then nothing was collected.
    public func run() throws -> CollectionResult {
        StopSignals.install()
        // Counted from here: a Ctrl-C while the source starts or the session is created stops the run too
        // (read later, it was lost, and the collection ran on until a second one).
        var signalsSeen = StopSignals.count
        // Big arrays come and go with every batch. Sent to mmap, each one's pages are faulted in and
        // zeroed again every cut: at 10M live blocks that was a third of the collector's CPU (256 KiB
        // threshold: 10.0-10.6 s to return, 545-558 MB peak). Up to 4 MiB they now stay in the heap and
        // are reused, untrimmed (7.0-7.7 s, 581-584 MB); above it they still go back to the system when
        // freed. glibc's default threshold would climb to 32 MiB after the first big free: faster again
        // (6.4-7.5 s) but 636-666 MB, over the 64 bytes per live block the collector may use.
        MallocTuning.set(.mmapThreshold, 4 << 20)
        MallocTuning.set(.trimThreshold, Int32.max)
        try source.begin(into: tracker)
        let writer: SessionWriter
        do {
            try SessionPath.prepare(path)
            writer = try SessionWriter(creating: path, info: info, parts: options.schemaParts, mode: options.fileMode)
        } catch {
            _ = source.stop(tracker: tracker)
            throw error
        }
        let started = monotonicNow()
        var nextFlush = started &+ options.intervalNs
        var nextSymbols = started
        var end: SessionEnd?
        var sourceError: Error?
        var stopSignals: Int32 = 0
        var cut: CutInProgress?
        var catchingUp = false
        loop: while true {
            let n: Int
            // On the shim's coarse clock: a poll that finds nothing proves every later event came after it.
            let pollStarted = coarseMonotonicNow()
            do {
                n = try source.poll(into: tracker)
            } catch {
                sourceError = error
                break loop
            }
            // Frees carry no time: the tracker dates them by its clock, which an empty poll moves on,
            // so a block freed after a quiet spell is dated no earlier than that poll (a lifetime read
            // at most one idle wait short), never later than it happened.
            if n == 0 { tracker.observe(time: pollStarted) }
            if let e = source.finished(tracker: tracker) {
                end = e
                break loop
            }
            let signals = StopSignals.count
            if signals != signalsSeen {
                stopSignals += signals - signalsSeen
                signalsSeen = signals
                if source.firstSignalStops || stopSignals >= 2 { break loop }
                if StopSignals.last == SIGTERM { source.forward(signal: SIGTERM) }
            }
            let now = monotonicNow()
            if let d = options.durationNs, now &- started >= d { break loop }
            if now >= nextSymbols && tracker.hasNewStacks {
                let (modules, stacks) = tracker.takeNewStacks()
                let number = batchNumber
                symbols.early(modules: modules, stacks: stacks, batch: number) { [self] in writeSymbols(writer, through: number) }
                nextSymbols = now &+ Self.symbolsEveryNs
            }
            if var job = cut {
                cut = nil
                // A slice of the cut per turn, between polls, so the ring keeps draining.
                if tracker.advance(&job, budget: Self.cutSlice) {
                    catchingUp = job.leftBlocks
                    submit(writer, tracker.finishCut(&job, at: now, rssBytes: source.rssPID.flatMap(HostFacts.rssBytes)))
                    // A cut that left blocks behind is followed by the next as soon as the writer is free:
                    // at an interval's pace a program allocating faster than one batch per interval left
                    // millions of blocks to write after it ended (1.7-2.8 s at ten million).
                    nextFlush = catchingUp ? now : now &+ options.intervalNs
                } else {
                    cut = job
                }
            } else if now >= nextFlush {
                if writerIdle.wait(timeout: .now()) == .success {
                    writerIdle.signal()
                    if catchingUp && writeError != nil {
                        // The last write failed: a batch cut now would only be carried in memory beside the
                        // blocks it copies. Retry at the interval's pace (the writer is idle: no race).
                        catchingUp = false
                        nextFlush = now &+ options.intervalNs
                    } else {
                        cut = tracker.beginCut()
                    }
                } else if catchingUp {
                    nextFlush = now &+ Self.catchUpRetryNs  // no interval was put off: not a deferred flush
                } else {
                    deferredFlushes &+= 1
                    nextFlush = now &+ options.intervalNs / 4
                }
            }
            if cut == nil {
                let untilFlush = nextFlush &- min(now, nextFlush)
                if n == 0 { source.wait(timeoutNs: min(10_000_000, untilFlush)) } else { source.pace(after: n, timeoutNs: untilFlush) }
            }
        }
        if end == nil {
            end = source.stop(tracker: tracker)
            if sourceError == nil {
                // Whatever arrived between the last poll and the stop.
                do {
                    while try source.poll(into: tracker) > 0 {}
                } catch {
                    sourceError = error
                }
            }
        }
        var result = CollectionResult(sessionPath: path, end: end, failure: nil, outstanding: (0, 0), counters: [:])
        guard waitForWriter(signalsAtStart: StopSignals.count) else {
            result.failure = "the session writer did not finish; \(path) holds what was written before"
            return result
        }
        if var job = cut {
            cut = nil
            // In slices: one unbounded slice would scan every shard before the batch limit is checked,
            // and put every block not yet checkpointed (all ten million, at scale) into one batch.
            while !tracker.advance(&job, budget: Self.cutSlice) {}
            submit(writer, tracker.finishCut(&job, at: monotonicNow(), rssBytes: source.rssPID.flatMap(HostFacts.rssBytes)))
            guard waitForWriter(signalsAtStart: StopSignals.count) else {
                result.failure = "the session writer did not finish; \(path) holds what was written before"
                return result
            }
        }
        // The last state, in as many bounded batches as it takes.
        while true {
            let (last, complete) = tracker.cutChecked(at: monotonicNow(), rssBytes: source.rssPID.flatMap(HostFacts.rssBytes))
            submit(writer, last)
            guard waitForWriter(signalsAtStart: StopSignals.count) else {
                result.failure = "the session writer did not finish; \(path) holds what was written before"
                return result
            }
            if complete { break }
        }
        writeQueue.sync {}
        if let writeError {
            let since = writtenUpToNs == 0 ? "its start" : String(format: "%.1f s", Double(writtenUpToNs &- min(writtenUpToNs, info.startMonotonicNs)) / 1e9) + " into the run"
            result.failure = "\(path) holds the collection only up to \(since): the last \(failedWrites) writes failed (\(writeError.detail))"
        } else {
            do {
                if let command = source.currentCommand, command != info.command {
                    info.command = command
                    try writer.update(info: info)
                }
                try writer.finish(end: end, endRealtimeNs: realtimeNow(), endMonotonicNs: monotonicNow())
                if fileLost || !writer.fileIsAtPath { result.sessionPath = try saveElsewhere(writer) }
            } catch {
                result.failure = "\(error)"
            }
        }
        if result.failure == nil, let sourceError { result.failure = "\(sourceError)" }
        result.outstanding = tracker.outstanding
        result.counters = tracker.counters.merging(source.counters) { $1 }
        return result
    }

    /// A session whose file was removed from under us: saved again at its path if its directory is
    /// there and the name free, else in the temporary directory; the path it went to.
    private func saveElsewhere(_ writer: SessionWriter) throws -> String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        var target = path
        if (try? SessionPath.check(path)) == nil || FileManager.default.fileExists(atPath: path) {
            target = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).\(getpid())").path
        }
        try writer.saveCopy(to: target)
        options.log("the session was saved as \(target)")
        return target
    }

    /// New blocks checkpointed per loop turn while a cut is under way.
    private static let cutSlice = 1 << 16
    /// While cuts catch up, how soon a busy writer is asked again.
    private static let catchUpRetryNs: UInt64 = 5_000_000
    /// How often new stacks go to the symbolizer while the program runs: often enough that little is
    /// left when it ends, seldom enough that each hand-over is worth a wakeup of that thread.
    private static let symbolsEveryNs: UInt64 = 50_000_000

    /// Writes what the symbolizer finished for batches up to `number` (locations and stacks, no interval)
    /// on the writer thread, while the program runs: the batch that ends the program then has only its
    /// last stacks to write. Runs between batches, in order with them; what cannot be written waits for
    /// the next batch, as a failed batch does.
    private func writeSymbols(_ writer: SessionWriter, through number: UInt64) {
        writeQueue.async { [self] in
            let cpu = threadCPUNow()
            defer { writerCPUNs &+= threadCPUNow() &- cpu }
            let symbolized = symbols.take(through: number)
            guard !symbolized.locations.isEmpty || !symbolized.stacks.isEmpty else { return }
            if carried != nil {
                carried?.modules += symbolized.modules
                carried?.locations += symbolized.locations
                carried?.stacks += symbolized.stacks
                return
            }
            var batch = SessionBatch()
            // The cut that introduced these modules may write their rows again: the writer's upsert keeps the row
            // (and an unload recorded since) as it is.
            (batch.modules, batch.locations, batch.stacks) = (symbolized.modules, symbolized.locations, symbolized.stacks)
            do throws(SessionError) {
                try writer.write(batch)
            } catch {
                if writeError == nil {
                    options.log("cannot write \(path) (\(error.detail)): collecting on in memory, retrying every interval")
                }
                writeError = error
                carried = batch
            }
        }
    }

    /// Hands a cut batch to the writer thread (which must be idle), with the source's counters.
    private func submit(_ writer: SessionWriter, _ cut: PendingBatch) {
        var pending = cut
        for (k, v) in source.counters { pending.batch.counters[k] = v }
        pending.batch.counters[.deferredFlushes] = deferredFlushes
        pending.batch.counters[.writerWaitNs] = writerWaitNs
        pending.batch.counters[.collectorEventCPUNs] = threadCPUNow()
        pending.batch.counters[.collectorPeakRSSBytes] = HostFacts.peakRSSBytes()
        let number = batchNumber
        batchNumber += 1
        symbols.finish(modules: pending.newModules, stacks: pending.newStacks, batch: number)
        pending.newModules = []
        pending.newStacks = []
        // Boxed, so the writer thread ends up owning the only copy and can sort its blocks in place.
        let box = BatchBox(pending)
        writerIdle.wait()
        writeQueue.async { [self] in
            defer { writerIdle.signal() }
            let cpu = threadCPUNow()
            defer { writerCPUNs &+= threadCPUNow() &- cpu }
            guard var cut = box.take() else { return }
            var batch = cut.batch
            cut.batch = SessionBatch()
            let symbolized = symbols.take(through: number)
            batch.modules += symbolized.modules
            (batch.locations, batch.stacks) = (symbolized.locations, symbolized.stacks)
            // The symbolizer's thread counts as the writer's, as when the writer symbolized.
            batch.counters[.collectorWriterCPUNs] = writerCPUNs &+ symbolized.cpuNs
            if var earlier = carried {
                earlier.append(batch)
                batch = earlier
                carried = nil
            }
            let cutAt = batch.timeNs
            do throws(SessionError) {
                try writer.write(batch)
                if writeError != nil { options.log("the session is written again: \(path) is complete up to now") }
                writeError = nil
                writtenUpToNs = cutAt
                if !fileLost && !writer.fileIsAtPath {
                    fileLost = true
                    options.log("\(path) was removed or replaced while collecting: the session is saved elsewhere at the end")
                }
            } catch {
                if writeError == nil {
                    options.log("cannot write \(path) (\(error.detail)): collecting on in memory, retrying every interval")
                }
                writeError = error
                failedWrites += 1
                carried = batch
            }
        }
    }

    /// Waits for the writer to go idle. A stop signal during the wait gives up (a stuck writer must not
    /// hold the collector hostage): false then.
    private func waitForWriter(signalsAtStart: Int32) -> Bool {
        let start = monotonicNow()
        defer { writerWaitNs &+= monotonicNow() &- start }
        while writerIdle.wait(timeout: .now() + .milliseconds(100)) != .success {
            if StopSignals.count != signalsAtStart { return false }
        }
        writerIdle.signal()
        return true
    }
}

/// Hands a batch to the writer thread without a second reference to it.
private final class BatchBox: @unchecked Sendable {
    private var cut: PendingBatch?

    init(_ cut: PendingBatch) { self.cut = cut }

    func take() -> PendingBatch? {
        defer { cut = nil }
        return cut
    }
}

extension CounterName {
    /// Flushes put off because the writer was still busy with the previous interval.
    public static let deferredFlushes = CounterName("deferred_flushes")
    /// Nanoseconds the collection waited for the session writer (at the end, for the last interval).
    public static let writerWaitNs = CounterName("writer_wait_ns")
    /// CPU time of the collector's event thread and of its session writer, up to the last flush.
    public static let collectorEventCPUNs = CounterName("collector_event_cpu_ns")
    public static let collectorWriterCPUNs = CounterName("collector_writer_cpu_ns")
    /// The collector's own peak RSS (VmHWM) at the last flush.
    public static let collectorPeakRSSBytes = CounterName("collector_peak_rss_bytes")
}
