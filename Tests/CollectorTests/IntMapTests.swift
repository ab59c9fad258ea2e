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

    func testTouchingKeysBeforeSettingThemChangesNothing() {
        // The writer touches a new stack's node keys (absent ones) just before it sets them.
        var map = IntMap(capacity: 16)
        for k in UInt64(1)...1000 { map.set(k << 24 | 3, UInt32(k)) }
        let keys = (UInt64(1)...3000).map { $0 << 24 | 3 }
        keys.withUnsafeBufferPointer { _ = map.touch($0) }
        [UInt64]().withUnsafeBufferPointer { _ = map.touch($0) }
        XCTAssertEqual(map.count, 1000)
        for k in UInt64(1)...1000 { XCTAssertEqual(map.get(k << 24 | 3), UInt32(k)) }
        XCTAssertNil(map.get(1001 << 24 | 3))
        for k in UInt64(1001)...3000 { map.set(k << 24 | 3, UInt32(k)) }
        XCTAssertEqual(map.count, 3000)
        XCTAssertEqual(map.get(3000 << 24 | 3), 3000)
    }
}
