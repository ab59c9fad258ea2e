import Foundation
import SessionStore
import Vocabulary
import XCTest

@testable import LeakReport

/// `StackPaths` numbers stack-tree paths: two nodes get one id exactly when the keys on their ways from
/// the root are equal, within one session and across sessions numbered together, with or without the
/// look-ups it skips for a session whose locations all read differently.
final class StackPathsTests: XCTestCase {
    /// A session whose stacks share callers: leaf locations 1–3 under 4 ← 5, 6 ← 5, 7 ← 4 ← 5 and 8 alone.
    private func session(_ name: String, extra: [UInt32] = []) throws -> StackCatalog {
        let path = SessionFixture.path(name)
        let w = try SessionWriter(
            creating: path, info: SessionInfo(mode: .launch, command: ["./t"], pid: 1, startRealtimeNs: 1, startMonotonicNs: 1, intervalMs: 1000))
        var b = SessionBatch()
        b.timeNs = 2
        b.spaces = [SpaceRow(id: 1, info: SpaceInfo(kind: .user, pid: 1, command: ["./t"], startNs: 1))]
        b.locations = (1...9).map { LocationRecord(id: Int64($0), address: 0x1000 * UInt64($0), lines: [SymbolLine(function: "f\($0)")]) }
        let stacks: [[Int64]] = [[1, 4, 5], [2, 4, 5], [3, 4, 5], [6, 5], [7, 4, 5], [8], [4, 5]] + extra.map { [Int64($0), 4, 5] }
        b.stacks = stacks.enumerated().map { StackRecord(id: UInt32($0.offset + 1), space: 1, origin: .user, truncated: false, locations: $0.element) }
        try w.write(b)
        try w.finish(end: .exited(status: 0), endRealtimeNs: 3, endMonotonicNs: 3)
        return try SessionReader(path: path).stackCatalog()
    }

    /// The reference: each node's keys from the root, compared as arrays.
    private func keyPaths(_ c: StackCatalog, _ keys: [Int32]) -> [[Int32]] {
        c.parents.indices.map { n in
            var out: [Int32] = []
            var node = n
            while node != 0 {
                out.append(keys[Int(c.nodeLocations[node])])
                node = Int(c.parents[node])
            }
            return out.reversed()
        }
    }

    private func assertNumbering(_ catalogs: [StackCatalog], keys: [[Int32]], distinct: [Bool], file: StaticString = #filePath, line: UInt = #line) {
        var paths = StackPaths(capacity: 16)
        let ids = zip(catalogs, zip(keys, distinct)).map { c, k in paths.number(c, locationKeys: k.0, distinctKeys: k.1) }
        let reference = zip(catalogs, keys).map { keyPaths($0, $1) }
        var pairs = 0
        for a in catalogs.indices {
            for b in catalogs.indices {
                for i in 1..<ids[a].count {
                    for j in 1..<ids[b].count {
                        XCTAssertEqual(ids[a][i] == ids[b][j], reference[a][i] == reference[b][j], "nodes \(a):\(i) and \(b):\(j)", file: file, line: line)
                        pairs += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(pairs, 50, file: file, line: line)
    }

    func testEqualPathsOneIdWithinAndAcrossSessions() throws {
        let a = try session("paths-a"), b = try session("paths-b", extra: [9])
        let own = Array(Int32(0)..<Int32(a.locationFrames.count)), ownB = Array(Int32(0)..<Int32(b.locationFrames.count))
        XCTAssertGreaterThan(a.parents.count, 6)
        // Distinct keys, with and without the skipped look-ups: both give the reference's partition.
        assertNumbering([a, b], keys: [own, ownB], distinct: [true, true])
        assertNumbering([a, b], keys: [own, ownB], distinct: [false, false])
        // Locations 1, 2 and 3 read the same (a library loaded three times): their three stacks are one path.
        var merged = own
        merged[2] = merged[1]
        merged[3] = merged[1]
        assertNumbering([a, b], keys: [merged, ownB], distinct: [false, true])
        var one = StackPaths(capacity: 16)
        let ids = one.number(a, locationKeys: merged)
        let leaves = (1...3).compactMap { a.stacks[UInt32($0)].map { ids[Int($0.leaf)] } }
        XCTAssertEqual(leaves.count, 3)
        XCTAssertEqual(Set(leaves).count, 1)
        XCTAssertNotEqual(a.stacks[4].map { ids[Int($0.leaf)] }, leaves.first)
    }
}
