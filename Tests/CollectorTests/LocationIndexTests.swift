import XCTest

@testable import Symbols

/// LocationIndex (the symbolizer's id per distinct frame address) against Dictionary, through growth, on
/// keys that differ only in module or only in space, as kernel, JIT and library frames at one address do.
final class LocationIndexTests: XCTestCase {
    private struct RefKey: Hashable {
        var module: Int64, space: UInt32, address: UInt64
    }

    func testGivesEachDistinctKeyTheNextIdAndFindsItAgainThroughGrowth() {
        var index = LocationIndex(capacity: 4)
        var reference: [RefKey: Int64] = [:]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<150_000 {
            // Few addresses, each under several modules and spaces: keys that collide on the address alone.
            let r = RefKey(
                module: Int64.random(in: -1...6, using: &rng), space: UInt32.random(in: 0...3, using: &rng),
                address: 0x40_0000 + UInt64.random(in: 0..<8_000, using: &rng) * 16)
            let key = LocationIndex.Key(module: r.module, space: r.space, address: r.address)
            if let id = reference[r] {
                XCTAssertEqual(index.id(of: key), id)
            } else {
                XCTAssertNil(index.id(of: key))
                let id = index.add(key)
                XCTAssertEqual(id, Int64(reference.count + 1))
                reference[r] = id
            }
        }
        XCTAssertEqual(index.count, reference.count)
        XCTAssertGreaterThan(reference.count, 100_000)
        for (r, id) in reference {
            XCTAssertEqual(index.id(of: LocationIndex.Key(module: r.module, space: r.space, address: r.address)), id)
        }
        XCTAssertNil(index.id(of: LocationIndex.Key(module: 7, space: 0, address: 0x40_0000)))
    }
}
