import Vocabulary
import XCTest

@testable import SessionStore

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
