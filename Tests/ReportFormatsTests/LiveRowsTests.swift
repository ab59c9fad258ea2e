import ReportFormats
import XCTest

/// The live view's rows kept in order across refreshes are, after every update, the rows a model makes
/// from scratch from the same stacks and scores, in the same order.
final class LiveRowsTests: XCTestCase {
    /// 400 stacks whose figures take few values (many ties, broken by index), some holding nothing;
    /// 30 rounds in which a random few change (to nothing, back, up and down), a few are added, and the
    /// scores move, in every order.
    func testMergedRowsEqualAFreshSortAfterEveryUpdate() {
        // Seeded, so a failure repeats.
        var rng = SplitMix64(seed: 10)
        func figures() -> (UInt64, UInt64) {
            let blocks = UInt64.random(in: 0...4, using: &rng)
            return (blocks == 0 && Bool.random(using: &rng) ? 0 : 16 * UInt64.random(in: 0...5, using: &rng), blocks)
        }
        var stacks = (0..<400).map { _ in
            let (bytes, blocks) = figures()
            return ProfileStack(frames: [], inUseBytes: bytes, inUseBlocks: blocks)
        }
        var growth = stacks.map { _ in Double(Int.random(in: 0...3, using: &rng)) }
        for sort in [LiveView.Sort.bytes, .count, .growth] {
            var kept = LiveView.SortedRows()
            kept.update(stacks, growth: growth, changed: [], sort: sort, everything: true)
            // The last round's model, held across the next update as the live view holds the model on
            // screen: merging into the rows kept aside must never change the rows a model holds.
            var held: (model: LiveView.Model, stacks: [Int])?
            for round in 0..<30 {
                var changed: [Int] = []
                for _ in 0..<Int.random(in: 0...12, using: &rng) {
                    let i = Int.random(in: stacks.indices, using: &rng)
                    (stacks[i].inUseBytes, stacks[i].inUseBlocks) = figures()
                    changed.append(i)
                }
                for _ in 0..<Int.random(in: 0...8, using: &rng) {
                    let i = Int.random(in: stacks.indices, using: &rng)
                    growth[i] = Double(Int.random(in: 0...3, using: &rng))
                    // Twice, as the live session may name a stack whose figures and score both changed.
                    changed += [i, i]
                }
                for _ in 0..<Int.random(in: 0...3, using: &rng) {
                    let (bytes, blocks) = figures()
                    stacks.append(ProfileStack(frames: [], inUseBytes: bytes, inUseBlocks: blocks))
                    growth.append(Double(Int.random(in: 0...3, using: &rng)))
                    changed.append(stacks.count - 1)
                }
                kept.update(stacks, growth: growth, changed: changed.shuffled(using: &rng), sort: sort, everything: false)
                if let held { XCTAssertEqual(held.model.rows.map(\.stack), held.stacks, "\(sort), round \(round): a held model's rows changed") }
                let fresh = LiveView.Model(
                    profile: Profile(stacks: stacks), pid: 1, command: "", rssBytes: nil, lostEvents: 0, elapsedNs: 0, sort: sort, growth: growth)
                let model = LiveView.Model(
                    profile: Profile(stacks: stacks), pid: 1, command: "", rssBytes: nil, lostEvents: 0, elapsedNs: 0, sort: sort, growth: growth,
                    rows: kept)
                XCTAssertEqual(kept.rows.map(\.stack), fresh.rows.map(\.stack), "\(sort), round \(round)")
                XCTAssertEqual(kept.rows.map { [$0.bytes, $0.blocks] }, fresh.rows.map { [$0.bytes, $0.blocks] }, "\(sort), round \(round)")
                XCTAssertEqual(kept.rows.map(\.growth), fresh.rows.map(\.growth), "\(sort), round \(round)")
                XCTAssertEqual(model.outstandingBytes, fresh.outstandingBytes)
                XCTAssertEqual(LiveView.render(model, width: 100, height: 40), LiveView.render(fresh, width: 100, height: 40))
                held = (model, model.rows.map(\.stack))
            }
            XCTAssertGreaterThan(kept.rows.count, 100)
        }
    }
}
