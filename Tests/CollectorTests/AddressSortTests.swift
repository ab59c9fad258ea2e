import SessionStore
import Vocabulary
import XCTest

/// The checkpoint rows' radix sort against the standard library's sort, on address sets shaped like a
/// real heap (one region, high bytes shared) and like several spaces far apart (every byte differs).
final class AddressSortTests: XCTestCase {
    private func blocks(_ n: Int, spread: ClosedRange<UInt64>, using rng: inout SystemRandomNumberGenerator) -> [LiveBlock] {
        var seen = Set<UInt64>()
        var out: [LiveBlock] = []
        while out.count < n {
            let a = UInt64.random(in: spread, using: &rng) & ~0xf
            guard seen.insert(a).inserted else { continue }
            out.append(LiveBlock(address: a, size: UInt64(out.count), stackID: SessionStackID(out.count % 977), timeNs: 0, function: .malloc))
        }
        return out
    }

    func testSortsLikeTheStandardSortAtEverySize() {
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 511, 512, 513, 4096, 200_000] {
            for spread in [0x5555_0000_0000...0x5555_3fff_ffff, 0x1000...UInt64.max >> 1] {
                var b = blocks(n, spread: spread, using: &rng)
                let expected = b.sorted { $0.address < $1.address }
                AddressSort.sort(&b)
                XCTAssertEqual(b, expected, "n \(n), spread \(spread)")
            }
        }
    }

    func testAddressesComeBackSortedAndEachOnce() {
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 3, 600, 100_000] {
            // Every address is freed up to three times in an interval (allocated again in between).
            var a: [UInt64] = []
            for _ in 0..<n {
                let x = UInt64.random(in: 0x7f00_0000_0000...0x7f00_00ff_ffff, using: &rng)
                a += Array(repeating: x, count: Int.random(in: 1...3, using: &rng))
            }
            a.shuffle(using: &rng)
            XCTAssertEqual(AddressSort.sortedUnique(a), Array(Set(a)).sorted(), "n \(n)")
        }
    }

    func testEqualAddressesKeepTheirOrder() {
        // Unique in practice; stability keeps the writer's result the same as before if they ever repeat.
        let b = (0..<2000).map { i in
            LiveBlock(address: UInt64(0x1000 + (i % 7) * 16), size: UInt64(i), stackID: 1, timeNs: 0, function: .malloc)
        }
        var sorted = b
        AddressSort.sort(&sorted)
        XCTAssertEqual(sorted.map(\.size), b.sorted { $0.address < $1.address }.map(\.size))
    }
}
