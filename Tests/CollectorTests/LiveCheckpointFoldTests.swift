import SessionStore
import Vocabulary
import XCTest

/// A chunk's rows folded at once (`LiveCheckpoint.Fold`) must give exactly what applying each row in turn
/// gives: a base replaces everything, a delta removes first and then puts.
final class LiveCheckpointFoldTests: XCTestCase {
    private struct Row {
        var base: Bool
        var puts: [LiveBlock]
        var removes: [UInt64]
    }

    private func block(_ address: UInt64, _ n: Int) -> LiveBlock {
        LiveBlock(address: address, size: UInt64(n), stackID: SessionStackID(n % 7 + 1), timeNs: UInt64(n) * 1000, function: .malloc)
    }

    /// The rows applied one by one to a dictionary: the semantics the fold must keep.
    private func model(_ rows: [Row]) -> [LiveBlock] {
        var state: [UInt64: LiveBlock] = [:]
        for r in rows {
            if r.base { state = [:] }
            for a in r.removes { state[a] = nil }
            for p in r.puts { state[p.address] = p }
        }
        return state.values.sorted { $0.address < $1.address }
    }

    private func fold(_ rows: [Row]) -> [LiveBlock] {
        var f = LiveCheckpoint.Fold()
        for r in rows { f.add(base: r.base, puts: r.puts, removes: r.removes) }
        return f.blocks()
    }

    private func randomRows(count: Int, keys: UInt64, baseEvery: Int, using rng: inout some RandomNumberGenerator) -> [Row] {
        var rows: [Row] = []
        var n = 0
        for i in 0..<count {
            let isBase = i == 0 ? Bool.random(using: &rng) : Int.random(in: 0..<baseEvery, using: &rng) == 0
            var puts = Set<UInt64>(), removes = Set<UInt64>()
            for _ in 0..<Int.random(in: 0...40, using: &rng) { puts.insert(0x7f00_0000_0000 + UInt64.random(in: 0..<keys, using: &rng) * 16) }
            if !isBase {
                // Some addresses both removed and put in one row: the put must win.
                for _ in 0..<Int.random(in: 0...30, using: &rng) { removes.insert(0x7f00_0000_0000 + UInt64.random(in: 0..<keys, using: &rng) * 16) }
            }
            let p = puts.sorted().map { a -> LiveBlock in
                n += 1
                return block(a, n)
            }
            rows.append(Row(base: isBase, puts: p, removes: removes.sorted()))
        }
        return rows
    }

    func testFoldEqualsApplyingEachRowInTurn() {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<400 {
            let rows = randomRows(count: Int.random(in: 0...40, using: &rng), keys: trial % 2 == 0 ? 64 : 4096, baseEvery: 12, using: &rng)
            XCTAssertEqual(fold(rows), model(rows), "trial \(trial): \(rows.count) rows")
        }
    }

    func testALaterPutOutlivesAnEarlierRemoveAndALaterRemoveAnEarlierPut() {
        let a: UInt64 = 0x1000, b: UInt64 = 0x2000, c: UInt64 = 0x3000
        let rows = [
            Row(base: true, puts: [block(a, 1), block(b, 2)], removes: []),
            Row(base: false, puts: [block(c, 3)], removes: [a]),
            Row(base: false, puts: [block(a, 4)], removes: [b, c]),
            Row(base: false, puts: [], removes: [a]),
            Row(base: false, puts: [block(a, 5), block(b, 6)], removes: [a]),
        ]
        XCTAssertEqual(fold(rows).map(\.address), [a, b])
        XCTAssertEqual(fold(rows).map(\.size), [5, 6])
        XCTAssertEqual(fold(Array(rows.prefix(4))).map(\.address), [])
        XCTAssertEqual(LiveCheckpoint.apply(puts: [block(c, 7)], removes: [a], to: [block(a, 1), block(b, 2)]).map(\.address), [b, c])
    }
}
