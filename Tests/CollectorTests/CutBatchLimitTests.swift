import Foundation
import TestSupport
import SessionStore
import XCTest

@testable import CollectionRunner
@testable import Tracking
import Vocabulary

/// Every batch the writer gets is bounded (`CutInProgress.maxPuts` new blocks, plus one slice), also the
/// one a collection ends in the middle of: its blocks must not all go into a single batch.
final class CutBatchLimitTests: XCTestCase {
    func testACutInProgressWhenTheProgramEndsIsFinishedInBoundedBatches() throws {
        let blocks = 3 * CutInProgress.maxPuts
        // One step allocates everything (longer than the 1 ms interval, so a cut begins after it), the
        // next ends the program before that cut has taken a slice.
        let source = ScriptedSource(steps: [
            (0, {
                [.stack(StackDefinition(id: 1, frames: [0x1234]))]
                    + (0..<blocks).map { i in
                        .alloc(
                            Allocation(
                                address: 0x10_0000_0000 + UInt64(i) * 32, size: 16, kind: .heap, function: .malloc, stack: .local(1),
                                time: monotonicNow()))
                    }
            }),
            (0, { [] }),
        ])
        let path = Scratch.directory.appendingPathComponent("cutlimit-\(getpid()).leaks").path
        try? FileManager.default.removeItem(atPath: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let info = SessionInfo(mode: .launch, command: ["app"], pid: getpid(), startRealtimeNs: 0, startMonotonicNs: monotonicNow(), intervalMs: 1)
        let result = try CollectionRunner(source: source, sessionPath: path, info: info, options: RunnerOptions(intervalNs: 1_000_000)).run()
        XCTAssertNil(result.failure)
        let reader = try SessionReader(path: path)
        let totals = try reader.totals().filter { $0.blocks > 0 }
        XCTAssertEqual(totals.map(\.blocks), [UInt64(blocks)])
        XCTAssertEqual(totals.map(\.bytes), [UInt64(blocks) * 16])
        var live = 0
        try reader.forEachLiveChunk(LiveFilter()) { _, chunk in live += chunk.count }
        XCTAssertEqual(live, blocks, "every block checkpointed")
        // A batch holds at most maxPuts blocks plus one slice of the table (65,536 slots), so 3 * maxPuts
        // blocks take at least three batches, each of which writes an interval row.
        let intervals = try reader.history().count
        XCTAssertGreaterThanOrEqual(intervals, 3, "the blocks went into \(intervals) batches")
    }
}
