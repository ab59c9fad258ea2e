import Vocabulary
import XCTest

/// IntMap (the session writer's stack-tree index) against Dictionary, through growth, replacement and
/// removal with backward shift, on keys packed as the writer packs them (parent << 24 | location).
final class IntMapTests: XCTestCase {
    func testMatchesADictionaryThroughGrowthReplacementAndRemoval() {
        var map = IntMap(capacity: 4)
        var reference: [UInt64: UInt32] = [:]
        var rng = SystemRandomNumberGenerator()
        var keys: [UInt64] = []
        for step in 0..<200_000 {
            // Clustered keys (consecutive parents, few locations) make long probe runs, which removal must keep intact.
            let key = UInt64.random(in: 1...40_000, using: &rng) << 24 | UInt64.random(in: 1...8, using: &rng)
            switch step % 7 {
            case 5 where !keys.isEmpty:
                let k = keys[Int.random(in: 0..<keys.count, using: &rng)]
                map.remove(k)
                reference[k] = nil
            default:
                let v = UInt32(truncatingIfNeeded: step)
                map.set(key, v)
                if reference.updateValue(v, forKey: key) == nil { keys.append(key) }
            }
        }
        XCTAssertEqual(map.count, reference.count)
        for k in keys { XCTAssertEqual(map.get(k), reference[k], "key \(k)") }
        XCTAssertNil(map.get(40_001 << 24 | 1))
    }
}
