import SessionStore
import Vocabulary
import XCTest

@testable import Tracking

final class MappedRegionsTests: XCTestCase {
    private let page: UInt64 = 4096

    private func region(_ start: UInt64, pages: UInt64, stack: SessionStackID = 1) -> Region {
        Region(start: start, end: start + pages * page, stack: stack, time: 0, tid: 0, function: .mmap, backing: .anonymous)
    }

    private func spans(_ r: MappedRegions) -> [[UInt64]] { r.regions.map { [$0.start, $0.end] } }

    func testUnmappingTheMiddleLeavesTwoRegions() {
        var r = MappedRegions()
        let base: UInt64 = 0x7000_0000
        r.insert(region(base, pages: 10))
        let removed = r.remove(base + 3 * page, base + 5 * page)
        XCTAssertEqual(spans(r), [[base, base + 3 * page], [base + 5 * page, base + 10 * page]])
        XCTAssertEqual(removed.map { [$0.piece.start, $0.piece.end] }, [[base + 3 * page, base + 5 * page]])
        XCTAssertEqual(removed.map(\.blocksDelta), [1])
    }

    func testOneUnmapCoversSeveralRegionsAndTrimsTheEdges() {
        var r = MappedRegions()
        let base: UInt64 = 0x7000_0000
        r.insert(region(base, pages: 4, stack: 1))
        r.insert(region(base + 4 * page, pages: 2, stack: 2))
        r.insert(region(base + 8 * page, pages: 4, stack: 3))
        let removed = r.remove(base + 2 * page, base + 10 * page)
        XCTAssertEqual(spans(r), [[base, base + 2 * page], [base + 10 * page, base + 12 * page]])
        XCTAssertEqual(removed.map(\.piece.stack), [1, 2, 3])
        XCTAssertEqual(removed.map(\.piece.size), [2 * page, 2 * page, 2 * page])
        XCTAssertEqual(removed.map(\.blocksDelta), [0, -1, 0])
    }

    func testUnmapOfNothingRemovesNothing() {
        var r = MappedRegions()
        r.insert(region(0x7000_0000, pages: 1))
        XCTAssertEqual(r.remove(0x8000_0000, 0x8000_1000), [])
        XCTAssertEqual(r.count, 1)
    }

    func testChangesTrackRowsToWriteAndDelete() {
        var r = MappedRegions()
        let base: UInt64 = 0x7000_0000
        r.insert(region(base, pages: 4))
        var (deleted, written) = r.takeChanges()
        XCTAssertEqual(deleted, [])
        XCTAssertEqual(written.map(\.start), [base])
        // Trimming the front moves the row's key: the old row goes, a new one is written.
        _ = r.remove(base, base + page)
        (deleted, written) = r.takeChanges()
        XCTAssertEqual(deleted, [base])
        XCTAssertEqual(written.map { [$0.start, $0.end] }, [[base + page, base + 4 * page]])
        // A region born and gone within one interval never reaches the file.
        r.insert(region(base + 100 * page, pages: 1))
        _ = r.remove(base + 100 * page, base + 101 * page)
        (deleted, written) = r.takeChanges()
        XCTAssertEqual(deleted, [])
        XCTAssertEqual(written, [])
    }
}
