import SessionStore
import Vocabulary
import XCTest

@testable import Tracking

final class AddressTableTests: XCTestCase {
    private func block(_ size: UInt64) -> Block {
        Block(size: size, tick: 0, stack: 1, function: .malloc)
    }

    /// Random inserts and removes (every `removeEvery`-th operation) of `keys` possible addresses, each
    /// answer checked against a Dictionary model, which it returns.
    private func churn(
        _ t: AddressTable, operations: Int, base: UInt64, keys: UInt64, spacing: UInt64, removeEvery: Int
    ) -> [UInt64: UInt64] {
        var model: [UInt64: UInt64] = [:]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<operations {
            let addr = base + UInt64.random(in: 0..<keys, using: &rng) * spacing
            if i % removeEvery == removeEvery - 1 {
                XCTAssertEqual(t.remove(addr)?.size, model.removeValue(forKey: addr))
            } else {
                XCTAssertEqual(t.insert(addr, block(UInt64(i)))?.size, model[addr])
                model[addr] = UInt64(i)
            }
        }
        return model
    }

    func testInsertFindRemoveAgainstDictionaryThroughGrowth() {
        // A table that starts tiny must grow many times and stay identical to a Dictionary model,
        // including under backward-shift deletion in long probe runs.
        let t = AddressTable(shardCapacity: 16)
        defer { t.deallocate() }
        // Allocator-like addresses: 16-byte aligned, clustered, with reuse.
        let model = churn(t, operations: 200_000, base: 0x5555_0000_0000, keys: 50_000, spacing: 16, removeEvery: 3)
        XCTAssertEqual(t.count, model.count)
        for (k, v) in model { XCTAssertEqual(t.find(k)?.size, v) }
        var seen = 0
        t.forEach { k, b in
            seen += 1
            XCTAssertEqual(model[k], b.size)
        }
        XCTAssertEqual(seen, model.count)
    }

    func testShardsOfHugePageSizeStartOnAHugePageAndStayExact() {
        // 90,000 slots of 24 bytes: every shard is a mapping of more than 2 MiB, placed on a 2 MiB
        // boundary so that all of it but its tail can be huge pages (growth maps through the same call).
        let t = AddressTable(shardCapacity: 90_000)
        defer { t.deallocate() }
        let shards = t.mappedShards
        XCTAssertEqual(shards.count, AddressTable.shardCount)
        for m in shards {
            XCTAssertEqual(m.start % (2 << 20), 0, "shard at 0x\(String(m.start, radix: 16))")
            XCTAssertGreaterThanOrEqual(m.length, 2 << 20)
        }
        let model = churn(t, operations: 300_000, base: 0x7f00_0000_0000, keys: 200_000, spacing: 16, removeEvery: 3)
        XCTAssertEqual(t.count, model.count)
        for (k, v) in model { XCTAssertEqual(t.find(k)?.size, v) }
    }

    func testShardsPastTheSparseLimitStayExactAndDenseAgain() {
        // Small shards are kept half full; past 4,096 slots the 7/8 rule returns, so that ten million
        // blocks keep their memory budget. Cross that limit with churn and compare with a Dictionary.
        let t = AddressTable(shardCapacity: 16)
        defer { t.deallocate() }
        let model = churn(t, operations: 600_000, base: 0x7f00_0000_0000, keys: 400_000, spacing: 32, removeEvery: 4)
        XCTAssertGreaterThan(model.count, 200_000)
        XCTAssertEqual(t.count, model.count)
        for (k, v) in model { XCTAssertEqual(t.find(k)?.size, v) }
        // Dense again: under 1.75 slots of 32 bytes per block (half full would be 2 to 4 slots).
        XCTAssertLessThan(t.memoryBytes, model.count * 56)
    }

    func testAddressZeroIsAKeyLikeAnyOther() {
        let t = AddressTable()
        defer { t.deallocate() }
        XCTAssertNil(t.insert(0, block(7)))
        XCTAssertEqual(t.find(0)?.size, 7)
        XCTAssertEqual(t.count, 1)
        XCTAssertEqual(t.remove(0)?.size, 7)
        XCTAssertNil(t.find(0))
        XCTAssertEqual(t.count, 0)
    }

    func testCollectNewFindsEveryUncheckpointedBlockOnceThroughGrowthAndDeletion() {
        // The checkpoint scan relies on per-page dirty bits that inserts, backward-shift moves and
        // growth must keep right: every block not yet collected is found exactly once.
        let t = AddressTable(shardCapacity: 16)
        defer { t.deallocate() }
        var rng = SystemRandomNumberGenerator()
        var live: [UInt64: UInt64] = [:]
        var collected: Set<UInt64> = []
        for round in 0..<20 {
            for i in 0..<20_000 {
                let addr = UInt64(0x5555_0000_0000) + UInt64.random(in: 0..<40_000, using: &rng) * 16
                if i % 3 == 2 {
                    if t.remove(addr) != nil { live[addr] = nil; collected.remove(addr) }
                } else if t.find(addr) == nil {
                    t.insert(addr, block(UInt64(round)))
                    live[addr] = UInt64(round)
                }
            }
            var found: [UInt64] = []
            var shard = 0
            while shard < AddressTable.shardCount { shard = t.collectNew(from: shard, budget: 5000) { k, _ in found.append(k) } }
            XCTAssertEqual(found.count, Set(found).count, "a block was collected twice")
            XCTAssertTrue(Set(found).isDisjoint(with: collected), "a checkpointed block came back")
            collected.formUnion(found)
            XCTAssertEqual(collected, Set(live.keys), "round \(round)")
        }
        t.forEach { _, b in XCTAssertTrue(b.persisted) }
    }

    func testShardsGrowAtDifferentTimesSoNoInsertCopiesTheWholeTable() {
        // The collector drains the ring between inserts: if every shard grew within the same few
        // thousand inserts, one poll would copy the whole table (0.7 s at ten million blocks) and the
        // app's writers would give the collector up for gone. A window of inserts must grow the table by
        // about its share of the blocks (what growth costs on average), never by several times that.
        let t = AddressTable(shardCapacity: 16)
        defer { t.deallocate() }
        let window = 65_536, windows = 40
        var worst = 0.0
        var before = t.memoryBytes
        for i in 0..<(windows * window) {
            _ = t.insert(0x7f00_0000_0000 + UInt64(i) * 16, block(16))
            if i % window == window - 1 {
                let now = t.memoryBytes
                let count = i + 1 - window
                if count >= 500_000 {
                    let share = Double(window) / Double(count)
                    worst = max(worst, Double(now - before) / Double(before) / share)
                }
                before = now
            }
        }
        XCTAssertEqual(t.count, windows * window)
        XCTAssertLessThan(worst, 3, "one window grew the table by \(worst)× its share of the blocks")
    }
}
