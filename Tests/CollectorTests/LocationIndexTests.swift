import XCTest

@testable import Symbols

/// LocationIndex (the symbolizer's id per distinct frame address) against Dictionary, through growth, on
/// keys that differ only in module or only in space, as kernel, JIT and library frames at one address do.
final class LocationIndexTests: XCTestCase {
    func testGivesEachDistinctKeyTheNextIdAndFindsItAgainThroughGrowth() {
        var index = LocationIndex(capacity: 4)
        var reference: [LocationIndex.Key: Int64] = [:]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<150_000 {
            // Few addresses, each under several modules and spaces: keys that collide on the address alone.
            let key = LocationIndex.Key(
                module: Int64.random(in: -1...6, using: &rng), space: UInt32.random(in: 0...3, using: &rng),
                address: 0x40_0000 + UInt64.random(in: 0..<8_000, using: &rng) * 16)
            if let id = reference[key] {
                XCTAssertEqual(index.id(of: key), id)
            } else {
                XCTAssertNil(index.id(of: key))
                let id = index.add(key)
                XCTAssertEqual(id, Int64(reference.count + 1))
                reference[key] = id
            }
        }
        XCTAssertEqual(index.count, reference.count)
        XCTAssertGreaterThan(reference.count, 100_000)
        for (key, id) in reference { XCTAssertEqual(index.id(of: key), id) }
        XCTAssertNil(index.id(of: LocationIndex.Key(module: 7, space: 0, address: 0x40_0000)))
    }
}
