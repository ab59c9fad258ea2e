import SessionStore
import Tracking
import Vocabulary

/// Anything that produces events for the tracker: the shim's ring, BPF uprobes, the kernel's BPF
/// programs, a snapshot of what was live before an attach. The runner knows sources only through this.
public protocol EventSource: AnyObject {
    /// Opens the source's address spaces in `tracker`; called once, before the first poll.
    func begin(into tracker: Tracker) throws
    /// Applies the events available now and returns how many there were. Throws only for damage the
    /// source cannot read past (a corrupt ring); the runner then still writes what it has.
    func poll(into tracker: Tracker) throws -> Int
    /// Blocks until events may be available, or `timeoutNs` passes.
    func wait(timeoutNs: UInt64)
    /// Called after a poll that applied `events` events: a source whose producers are running flat out
    /// may pause here (at most `timeoutNs`) so that the next poll takes a batch instead of a trickle.
    func pace(after events: Int, timeoutNs: UInt64)
    /// The source's own counters (lost_events and the like), absolute values.
    var counters: [CounterName: UInt64] { get }
    /// How the traced program ended, once it has and everything it wrote was read; nil meanwhile.
    /// A source that traces no single program (the kernel) stays nil until stopped.
    func finished(tracker: Tracker) -> SessionEnd?
    /// Stops following (detach, or unload BPF programs): the collection stops for another reason.
    /// Returns how the session ended from the source's point of view.
    func stop(tracker: Tracker) -> SessionEnd
    /// What the first stop signal does: false means it is passed on to the program (launch mode) and
    /// collection goes on until the program exits or a second signal arrives.
    var firstSignalStops: Bool { get }
    /// Hands a stop signal to the traced program (launch mode: SIGTERM sent to the collector alone).
    func forward(signal: Int32)
    /// The process whose RSS each interval records.
    var rssPID: Int32? { get }
    /// The traced program's command line now, when it can change (launch mode follows exec): the session
    /// ends up naming the image the launched process ran last. nil: the one it started with.
    var currentCommand: [String]? { get }
}

extension EventSource {
    public func pace(after events: Int, timeoutNs: UInt64) {}
    public var firstSignalStops: Bool { true }
    public func forward(signal: Int32) {}
    public var rssPID: Int32? { nil }
    public var currentCommand: [String]? { nil }
}
