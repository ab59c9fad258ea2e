import Foundation
import SessionStore
import Tracking
import Vocabulary

@testable import CollectionRunner

/// Plays a program: each step's events are applied once its delay after the previous step has passed;
/// the program "exits" after the last step.
final class ScriptedSource: EventSource {
    private var steps: [(delayNs: UInt64, events: () -> [Event])]
    private var space: SpaceID = 0
    private var next = 0
    private var dueNs: UInt64 = 0

    init(steps: [(UInt64, () -> [Event])]) { self.steps = steps.map { (delayNs: $0.0, events: $0.1) } }

    func begin(into tracker: Tracker) throws {
        space = tracker.openSpace(SpaceInfo(kind: .user, pid: getpid(), command: ["app"], startNs: monotonicNow()))
        dueNs = monotonicNow() &+ steps[0].delayNs
    }

    func poll(into tracker: Tracker) throws -> Int {
        guard next < steps.count, monotonicNow() >= dueNs else { return 0 }
        let events = steps[next].events()
        for e in events { tracker.apply(e, in: space) }
        next += 1
        if next < steps.count { dueNs = monotonicNow() &+ steps[next].delayNs }
        return max(events.count, 1)
    }

    func wait(timeoutNs: UInt64) { usleep(UInt32(min(timeoutNs, 5_000_000) / 1000)) }
    var counters: [CounterName: UInt64] { [:] }
    func finished(tracker: Tracker) -> SessionEnd? { next >= steps.count ? .exited(status: 0) : nil }
    func stop(tracker: Tracker) -> SessionEnd { .detached }
}
