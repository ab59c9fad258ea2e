@testable import ShimSource
import XCTest

/// The collector's pause between polls while the app's writers run flat out: when it pauses and for how
/// long. (What it gains is measured by the benchmark, not here.)
final class RingPacingTests: XCTestCase {
    private let ring: UInt64 = 16 << 20

    func testAFullPollWithLittleWaitingPausesForThePacingInterval() {
        XCTAssertEqual(RingSource.pauseNs(after: 4096, ringSize: ring, backlog: 64 << 10, timeoutNs: 1_000_000_000), 2_000_000)
        XCTAssertEqual(RingSource.pauseNs(after: 1024, ringSize: ring, backlog: 0, timeoutNs: .max), 2_000_000)
    }

    func testTheRunnersNextDeadlineShortensThePause() {
        XCTAssertEqual(RingSource.pauseNs(after: 50_000, ringSize: ring, backlog: 0, timeoutNs: 300_000), 300_000)
        XCTAssertEqual(RingSource.pauseNs(after: 50_000, ringSize: ring, backlog: 0, timeoutNs: 0), 0)
    }

    func testATrickleIsNotPaused() {
        // A program that allocates now and then: the next poll finds nothing and the futex wait takes over.
        XCTAssertEqual(RingSource.pauseNs(after: 1, ringSize: ring, backlog: 0, timeoutNs: .max), 0)
        XCTAssertEqual(RingSource.pauseNs(after: 1023, ringSize: ring, backlog: 0, timeoutNs: .max), 0)
    }

    func testABacklogOfAnEighthOfTheRingIsDrainedAtOnce() {
        XCTAssertEqual(RingSource.pauseNs(after: 65_536, ringSize: ring, backlog: ring / 8, timeoutNs: .max), 0)
        XCTAssertEqual(RingSource.pauseNs(after: 65_536, ringSize: ring, backlog: ring / 8 - 8, timeoutNs: .max), 2_000_000)
    }

    func testASmallRingIsNeverPaused() {
        // LEAKSHIM_RING_SIZE below 4 MiB: two milliseconds of a busy app could fill it.
        XCTAssertEqual(RingSource.pauseNs(after: 65_536, ringSize: 2 << 20, backlog: 0, timeoutNs: .max), 0)
        XCTAssertEqual(RingSource.pauseNs(after: 65_536, ringSize: 4 << 20, backlog: 0, timeoutNs: .max), 2_000_000)
    }
}
