import SessionStore
import XCTest

@testable import Collector

final class TrackerTests: XCTestCase {
    private func alloc(_ addr: UInt64, _ size: UInt64, stack: UInt32 = 1, fn: AllocFunction = .malloc, replaces: UInt64? = nil, time: UInt64 = 100) -> Event {
        .alloc(Allocation(address: addr, size: size, kind: .heap, function: fn, stack: .shim(stack), time: time, tid: 7, replaces: replaces))
    }

    private func mmap(_ addr: UInt64, _ len: UInt64, stack: UInt32 = 1, replaces: UInt64? = nil) -> Event {
        .alloc(Allocation(address: addr, size: len, kind: .mmap, function: replaces == nil ? .mmap : .mremap, stack: .shim(stack), time: 5, replaces: replaces, backing: .anonymous))
    }

    private func tracker(stacks: [UInt32] = [1, 2]) -> Tracker {
        let t = Tracker()
        for s in stacks { t.apply(.stack(id: s, frames: [0x1000 + UInt64(s)], truncated: false)) }
        return t
    }

    /// Outstanding (bytes, blocks) per session stack of one kind, from the batch's totals.
    private func totals(_ b: SessionBatch, _ kind: BlockKind = .heap) -> [SessionStackID: [UInt64]] {
        var out: [SessionStackID: [UInt64]] = [:]
        for t in b.totals where t.kind == kind { out[t.stackID] = [t.bytes, t.blocks] }
        return out
    }

    func testReallocFreesTheOldBlockAndChargesTheNewOneToTheReallocSite() {
        let t = tracker()
        t.apply(alloc(0xa0, 100, stack: 1))
        t.apply(.free(address: 0xa0, kind: .heap, pending: true))
        t.apply(alloc(0xa0, 300, stack: 2, fn: .realloc, replaces: 0xa0))  // grew in place: still a free + a new block
        let b = t.cut(at: 1).batch
        XCTAssertEqual(totals(b), [1: [0, 0], 2: [300, 1]])
        XCTAssertEqual(b.liveUpserts.map { [$0.address, $0.size, UInt64($0.stackID)] }, [[0xa0, 300, 2]])
        XCTAssertEqual(b.liveUpserts.first?.function, .realloc)
        XCTAssertEqual(t.counters[.missedFrees, default: 0], 0)
    }

    func testFailedReallocRestoresTheOldBlock() {
        let t = tracker()
        t.apply(alloc(0xa0, 100, stack: 1))
        _ = t.cut(at: 1)
        t.apply(.free(address: 0xa0, kind: .heap, pending: true))
        t.apply(.undo(address: 0xa0, kind: .heap))
        let b = t.cut(at: 2).batch
        XCTAssertEqual(totals(b), [1: [100, 1]])
        XCTAssertEqual(t.outstanding.bytes, 100)
        XCTAssertEqual(t.liveCount(.heap), 1)
        // The row was persisted before the pending free; it is deleted and written again in one batch.
        XCTAssertEqual(b.liveDeletes, [LiveKey(kind: .heap, address: 0xa0)])
        XCTAssertEqual(b.liveUpserts.map(\.size), [100])
    }

    func testAllocationAtALiveAddressCountsAMissedFreeAndReplaces() {
        let t = tracker()
        t.apply(alloc(0xb0, 64, stack: 1))
        t.apply(alloc(0xb0, 32, stack: 2))
        let b = t.cut(at: 1).batch
        XCTAssertEqual(t.counters[.missedFrees], 1)
        XCTAssertEqual(totals(b), [1: [0, 0], 2: [32, 1]])
        XCTAssertEqual(t.outstanding.blocks, 1)
    }

    func testFreeOfAnUnknownAddressIsCountedAndHarmless() {
        let t = tracker()
        t.apply(.free(address: 0xdead, kind: .heap, pending: false))
        XCTAssertEqual(t.counters[.unmatchedFrees], 1)
        XCTAssertEqual(t.outstanding.blocks, 0)
    }

    func testUnknownShimStackIsChargedToTheEmptyStackAndCounted() {
        let t = tracker(stacks: [])
        t.apply(alloc(0xc0, 8, stack: 99))
        let b = t.cut(at: 1).batch
        XCTAssertEqual(t.counters[.unknownStacks], 1)
        XCTAssertEqual(b.liveUpserts.first?.stackID, StackTable.empty)
    }

    func testBlocksBornAndFreedWithinAnIntervalNeverReachTheFile() {
        let t = tracker()
        t.apply(alloc(0xd0, 10))
        t.apply(.free(address: 0xd0, kind: .heap, pending: false))
        let b = t.cut(at: 1).batch
        XCTAssertEqual(b.liveUpserts, [])
        XCTAssertEqual(b.liveDeletes, [])
        // The stack's cumulative totals still count it.
        XCTAssertEqual(b.totals.first { $0.stackID == 1 }?.totalBytes, 10)
    }

    func testSnapshotsHoldOnlyTheStacksThatChanged() {
        let t = tracker()
        t.apply(alloc(0xe0, 10, stack: 1))
        t.apply(alloc(0xe8, 20, stack: 2))
        XCTAssertEqual(Set(t.cut(at: 1).batch.snapshot.map(\.stackID)), [1, 2])
        t.apply(alloc(0xf0, 5, stack: 2))
        let snap = t.cut(at: 2).batch.snapshot
        XCTAssertEqual(snap.map { [UInt64($0.stackID), $0.bytes, $0.blocks, $0.timeNs] }, [[2, 25, 2, 2]])
        XCTAssertEqual(t.cut(at: 3).batch.snapshot, [])
    }

    func testMmapRegionsSplitOnPartialUnmapAndMapFixedReplaces() {
        let t = tracker()
        let base: UInt64 = 0x7f00_0000_0000
        t.apply(mmap(base, 10 * 4096, stack: 1))
        t.apply(.unmap(address: base + 4096, length: 4096, pending: false))
        var b = t.cut(at: 1).batch
        XCTAssertEqual(totals(b, .mmap), [1: [9 * 4096, 2]])
        // MAP_FIXED over pages 5..6 of the second piece: those pages now belong to stack 2.
        t.apply(mmap(base + 5 * 4096, 2 * 4096, stack: 2))
        b = t.cut(at: 2).batch
        XCTAssertEqual(totals(b, .mmap), [1: [7 * 4096, 3], 2: [2 * 4096, 1]])
        XCTAssertEqual(t.liveCount(.mmap), 4)
        // A length that is not a page multiple covers the whole last page.
        t.apply(.unmap(address: base, length: 1, pending: false))
        XCTAssertEqual(t.liveCount(.mmap), 3)
    }

    func testMremapKeepsTheBackingOfTheRegionItMoves() {
        let t = tracker()
        let base: UInt64 = 0x7f00_0000_0000
        t.apply(.alloc(Allocation(address: base, size: 4096, kind: .mmap, function: .mmap, stack: .shim(1), time: 1, backing: .file)))
        t.apply(.unmap(address: base, length: 4096, pending: true))
        t.apply(.alloc(Allocation(address: base + 0x10000, size: 8192, kind: .mmap, function: .mremap, stack: .shim(2), time: 2, replaces: base, backing: .anonymous)))
        let rows = t.cut(at: 1).batch.liveUpserts
        XCTAssertEqual(rows.map { [$0.address, $0.size] }, [[base + 0x10000, 8192]])
        XCTAssertEqual(rows.first?.backing, .file)
        XCTAssertEqual(rows.first?.function, .mremap)
    }

    func testMremapMovesTheRegionToTheMremapSiteAndUndoRestoresIt() {
        let t = tracker()
        let base: UInt64 = 0x7f00_0000_0000
        t.apply(mmap(base, 2 * 4096, stack: 1))
        t.apply(.unmap(address: base, length: 2 * 4096, pending: true))
        t.apply(mmap(base + 0x100000, 4 * 4096, stack: 2, replaces: base))
        var b = t.cut(at: 1).batch
        XCTAssertEqual(totals(b, .mmap), [1: [0, 0], 2: [4 * 4096, 1]])
        t.apply(.unmap(address: base + 0x100000, length: 4 * 4096, pending: true))
        t.apply(.undo(address: base + 0x100000, kind: .mmap))
        b = t.cut(at: 2).batch
        XCTAssertEqual(totals(b, .mmap), [2: [4 * 4096, 1]])
        XCTAssertEqual(t.liveCount(.mmap), 1)
    }

    func testKernelStacksAreInternedByContentAndKernelKindsHaveTheirOwnAddressSpace() {
        let t = Tracker()
        let s1 = t.internKernelStack([0xffff_ffff_8100_0000, 0xffff_ffff_8100_1000])
        let s2 = t.internKernelStack([0xffff_ffff_8100_0000, 0xffff_ffff_8100_1000])
        XCTAssertEqual(s1, s2)
        t.apply(.alloc(Allocation(address: 0x1000, size: 192, kind: .kernelSlab, function: .kmalloc, stack: .session(s1), time: 1, pid: 42, comm: TaskName("pipehog"))))
        t.apply(.alloc(Allocation(address: 0x1000, size: 4096, kind: .kernelPage, function: .pageAlloc, stack: .session(s1), time: 1)))
        t.apply(alloc(0x1000, 8))
        let b = t.cut(at: 1).batch
        XCTAssertEqual(t.counters[.missedFrees, default: 0], 0)
        XCTAssertEqual(Set(b.liveUpserts.map(\.kind)), [.kernelSlab, .kernelPage, .heap])
        XCTAssertEqual(b.liveUpserts.first { $0.kind == .kernelSlab }?.comm, "pipehog")
        XCTAssertEqual(b.liveUpserts.first { $0.kind == .kernelSlab }?.pid, 42)
    }

    func testTaskNamesKeepFifteenBytes() {
        XCTAssertEqual(TaskName("pipehog").description, "pipehog")
        XCTAssertEqual(TaskName("a-very-long-command-name").description, "a-very-long-com")
        XCTAssertEqual(TaskName(bytes: Array("kworker/0:1".utf8) + [0, 65, 66]).description, "kworker/0:1")
        XCTAssertEqual(TaskName("x"), TaskName(bytes: [120, 0]))
    }

    func testStacksResolveAgainstTheModulesLoadedWhenTheyArrived() {
        let t = Tracker()
        let lib = ModuleInfo(id: 3, path: "/tmp/libplugin.so", buildID: [0xab, 0x01], bias: 0x7000, lo: 0x7000, hi: 0x9000)
        t.apply(.module(lib))
        t.apply(.stack(id: 1, frames: [0x7100, 0x1], truncated: false))
        t.apply(.moduleUnload(id: 3))
        let other = ModuleInfo(id: 4, path: "/tmp/libother.so", buildID: [], bias: 0x7000, lo: 0x7000, hi: 0x9000)
        t.apply(.module(other))
        t.apply(.stack(id: 2, frames: [0x7100], truncated: true))
        let cut = t.cut(at: 1)
        let byID = Dictionary(uniqueKeysWithValues: cut.newStacks.map { ($0.id, $0) })
        XCTAssertEqual(byID[1]?.frames.map { $0.module?.info.path }, ["/tmp/libplugin.so", nil])
        XCTAssertEqual(byID[2]?.frames.map { $0.module?.info.path }, ["/tmp/libother.so"])
        XCTAssertEqual(byID[2]?.truncated, true)
        XCTAssertEqual(cut.batch.modules.map(\.path), ["/tmp/libplugin.so", "/tmp/libother.so"])
        XCTAssertEqual(cut.batch.modules.first?.buildID, "ab01")
        XCTAssertEqual(cut.batch.moduleUnloads.map(\.id), [1])
    }
}
