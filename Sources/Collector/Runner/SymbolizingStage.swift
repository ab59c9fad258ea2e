import Dispatch
import SessionStore
import Symbols
import Tracking
import Vocabulary

/// The symbolizer on a thread of its own, fed while the program runs: new stacks are symbolized as
/// they arrive (`early`), so when the program ends only the last moments' stacks are left to do, and
/// the session writer's SQLite work overlaps with symbolizing. Each piece of work carries the number
/// of the batch it belongs to; the writer of batch n takes exactly what was symbolized for batches up
/// to n (`take`), so a batch never holds stacks or modules that a later batch introduces. What is
/// symbolized early can be taken early too: the runner writes it to the session while the program runs.
final class SymbolizingStage {
    private let symbolizer: Symbolizer
    private let queue = DispatchQueue(label: "leakcollect.symbolizer")
    /// What is symbolized and not yet taken, per batch number, in order (guarded by the queue).
    /// Early pieces carry the rows of the modules their stacks were symbolized with: written early, a
    /// location must not name a module the session does not hold yet (a live view reads it at once, and
    /// never again).
    private var done: [(batch: UInt64, modules: [ModuleRow], locations: [LocationRecord], stacks: [StackRecord])] = []
    /// Stacks with a user frame outside every module (JIT code), held for their batch: a JIT may write
    /// its perf map late (the JVM's -XX:+DumpPerfMapAtExit only at exit), and the batch is when these
    /// were always named (guarded by the queue).
    private var heldForBatch: [NewStack] = []
    /// CPU time of the symbolizer's thread (guarded by the queue).
    private var cpuNs: UInt64 = 0

    init(_ symbolizer: Symbolizer) { self.symbolizer = symbolizer }

    /// Symbolizes stacks that arrived before batch `batch` is cut, in the background; then calls
    /// `done` (on the symbolizer's thread) if that produced anything to take.
    func early(modules: [SessionModule], stacks: [NewStack], batch: UInt64, done: @escaping () -> Void = {}) {
        queue.async { [self] in
            measured {
                symbolizer.register(modules)
                var now: [NewStack] = []
                now.reserveCapacity(stacks.count)
                for s in stacks {
                    if s.origin == .user && s.frames.contains(where: { $0.moduleID == 0 }) { heldForBatch.append(s) } else { now.append(s) }
                }
                if append(batch, modules.map(\.row), symbolizer.symbolize(now)) { done() }
            }
        }
    }

    /// Symbolizes the rest of batch `batch` (the stacks its cut found, and those held for it).
    func finish(modules: [SessionModule], stacks: [NewStack], batch: UInt64) {
        queue.async { [self] in
            measured {
                symbolizer.register(modules)
                var all = heldForBatch
                heldForBatch = []
                all.append(contentsOf: stacks)
                _ = append(batch, [], symbolizer.symbolize(all))
            }
        }
    }

    /// Everything symbolized for batches up to `batch`, in the order it was symbolized (a location's
    /// record comes before the stacks that use it), once the work queued before this call is done;
    /// and the symbolizer's CPU time so far.
    func take(through batch: UInt64) -> (modules: [ModuleRow], locations: [LocationRecord], stacks: [StackRecord], cpuNs: UInt64) {
        queue.sync {
            var modules: [ModuleRow] = []
            var locations: [LocationRecord] = []
            var stacks: [StackRecord] = []
            let upTo = done.firstIndex { $0.batch > batch } ?? done.count
            for piece in done[..<upTo] {
                modules.append(contentsOf: piece.modules)
                locations.append(contentsOf: piece.locations)
                stacks.append(contentsOf: piece.stacks)
            }
            done.removeFirst(upTo)
            return (modules, locations, stacks, cpuNs)
        }
    }

    private func append(_ batch: UInt64, _ modules: [ModuleRow], _ out: (locations: [LocationRecord], stacks: [StackRecord])) -> Bool {
        guard !out.locations.isEmpty || !out.stacks.isEmpty else { return false }
        done.append((batch, modules, out.locations, out.stacks))
        return true
    }

    private func measured(_ body: () -> Void) {
        let start = threadCPUNow()
        body()
        cpuNs &+= threadCPUNow() &- start
    }
}
