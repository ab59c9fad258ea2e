import SessionStore
import Vocabulary
import XCTest

@testable import Tracking

final class AddressTableTests: XCTestCase {
    private func block(_ size: UInt64) -> Block {
        Block(size: size, tick: 0, stack: 1, function: .malloc)
    }

    func testInsertFindRemoveAgainstDictionaryThroughGrowth() {
        // A table that starts tiny must grow many times and stay identical to a Dictionary model,
        // including under backward-shift deletion in long probe runs.
        let t = AddressTable(shardCapacity: 16)
        var model: [UInt64: UInt64] = [:]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<200_000 {
            // Allocator-like addresses: 16-byte aligned, clustered, with reuse.
            let addr = UInt64(0x5555_0000_0000) + UInt64.random(in: 0..<50_000, using: &rng) * 16
            if i % 3 == 2 {
                XCTAssertEqual(t.remove(addr)?.size, model.removeValue(forKey: addr))
            } else {
                let size = UInt64(i)
                XCTAssertEqual(t.insert(addr, block(size))?.size, model[addr])
                model[addr] = size
            }
        }
        XCTAssertEqual(t.count, model.count)
        for (k, v) in model { XCTAssertEqual(t.find(k)?.size, v) }
        var seen = 0
        t.forEach { k, b in
            seen += 1
            XCTAssertEqual(model[k], b.size)
        }
        XCTAssertEqual(seen, model.count)
    }

    func testAddressZeroIsAKeyLikeAnyOther() {
        let t = AddressTable()
        XCTAssertNil(t.insert(0, block(7)))
        XCTAssertEqual(t.find(0)?.size, 7)
        XCTAssertEqual(t.count, 1)
        XCTAssertEqual(t.remove(0)?.size, 7)
        XCTAssertNil(t.find(0))
        XCTAssertEqual(t.count, 0)
    }
}
