import Foundation
import TestSupport
import GRDB
import XCTest

@testable import SessionStore
@testable import Vocabulary

/// The catalog's stacks by id: an array for the ids a writer gives (dense from 0), a Dictionary for an
/// id far beyond them; either way a look-up finds exactly what was stored, and a removal (a failed
/// refresh rolling back) leaves no trace.
final class CatalogStacksTests: XCTestCase {
    private func stack(_ id: SessionStackID, leaf: Int32) -> StackCatalog.Stack {
        StackCatalog.Stack(id: id, space: 1, origin: .user, truncated: false, mayBeIncomplete: false, taskPid: nil, taskComm: nil, leaf: leaf)
    }

    func testDenseAndFarIdsAreFoundAndRemoved() {
        var stacks = StackCatalog.Stacks(denseLimit: 1 << 24)
        for id in SessionStackID(0)..<1000 { stacks[id] = stack(id, leaf: Int32(id) + 7) }
        let far = SessionStackID(3_000_000_000)
        stacks[far] = stack(far, leaf: 42)
        XCTAssertEqual(stacks.count, 1001)
        XCTAssertEqual(stacks[999]?.leaf, 1006)
        XCTAssertEqual(stacks[far]?.leaf, 42)
        XCTAssertNil(stacks[1000])
        XCTAssertNil(stacks[far - 1])

        stacks[999] = stack(999, leaf: 1)  // replaced, not added
        XCTAssertEqual(stacks.count, 1001)
        XCTAssertEqual(stacks[999]?.leaf, 1)
        stacks[999] = nil
        stacks[far] = nil
        stacks[5000] = nil  // absent: nothing changes
        XCTAssertEqual(stacks.count, 999)
        XCTAssertNil(stacks[999])
        XCTAssertNil(stacks[far])
        XCTAssertEqual(stacks[998]?.leaf, 1005)
    }
}

/// The sessionedit fuzzer's finding (tools/fuzz/regressions/sessionedit/stack-id-near-dense-limit): a
/// kernel session with one stack id edited to just under 2^24 made the catalog's array 16M entries long.
final class CatalogStacksGrowthTests: XCTestCase {
    private func stack(_ id: SessionStackID) -> StackCatalog.Stack {
        StackCatalog.Stack(id: id, space: 1, origin: .user, truncated: false, mayBeIncomplete: false, taskPid: nil, taskComm: nil, leaf: Int32(id % 1000))
    }

    func testAFarIdBelowTheLimitDoesNotGrowTheArray() {
        var stacks = StackCatalog.Stacks(denseLimit: 1 << 24)
        for id in SessionStackID(0)..<300 { stacks[id] = stack(id) }
        let far = SessionStackID((1 << 24) - 3)
        stacks[far] = stack(far)
        XCTAssertLessThan(stacks.dense.count, 8192)
        XCTAssertEqual(stacks.count, 301)
        XCTAssertEqual(stacks[far]?.leaf, Int32(far % 1000))
        XCTAssertEqual(stacks[299]?.leaf, 299)
        XCTAssertNil(stacks[300])
    }

    /// Ids that went to the Dictionary while the array was small are found once it has grown past them.
    func testIdsMovedIntoTheGrownArrayAreFoundAndCountedOnce() {
        var stacks = StackCatalog.Stacks(denseLimit: 1 << 24)
        stacks[20_000] = stack(20_000)
        XCTAssertTrue(stacks.dense.isEmpty)
        for id in SessionStackID(0)..<30_000 where id != 20_000 { stacks[id] = stack(id) }
        XCTAssertGreaterThan(stacks.dense.count, 20_000)
        XCTAssertTrue(stacks.sparse.isEmpty)
        XCTAssertEqual(stacks.count, 30_000)
        XCTAssertEqual(stacks[20_000]?.leaf, 0)
        stacks[20_000] = stack(20_000)
        XCTAssertEqual(stacks.count, 30_000)
        stacks[20_000] = nil
        XCTAssertEqual(stacks.count, 29_999)
        XCTAssertNil(stacks[20_000])
    }

    /// The finding end to end: the kernel seed session with its last stack's id moved just under 2^24.
    func testAKernelSessionWithAFarStackIdReadsSmall() throws {
        let seed = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/fuzz/corpus/session/kernel")
        let path = Scratch.directory.appendingPathComponent("far-stack-\(getpid()).leaks").path
        try Data(contentsOf: seed).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let far: Int64 = (1 << 24) - 3
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE stacks SET id = ? WHERE id = (SELECT max(id) FROM stacks)", arguments: [far])
        }
        let catalog = try SessionReader(path: path).stackCatalog()
        XCTAssertNotNil(catalog.stacks[SessionStackID(far)])
        XCTAssertGreaterThan(catalog.stacks.count, 300)
        XCTAssertLessThan(catalog.stacks.dense.count, 8192)
    }
}
