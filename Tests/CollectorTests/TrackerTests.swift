import SessionStore
import Vocabulary
import XCTest

@testable import Tracking

/// The tracker alone, driven with events as any source would send them: exact totals, checkpoints,
/// peaks, temporaries and lifetimes.
final class TrackerTests: XCTestCase {
    private var space: SpaceID = 0

    private func alloc(_ addr: UInt64, _ size: UInt64, stack: UInt64 = 1, fn: AllocFunction = .malloc, replaces: UInt64? = nil, time: UInt64 = 100, tid: UInt32 = 7) -> Event {
        .alloc(Allocation(address: addr, size: size, kind: .heap, function: fn, stack: .local(stack), time: time, tid: tid, replaces: replaces))
    }

    private func mmap(_ addr: UInt64, _ len: UInt64, stack: UInt64 = 1, replaces: UInt64? = nil) -> Event {
        .alloc(Allocation(address: addr, size: len, kind: .mmap, function: replaces == nil ? .mmap : .mremap, stack: .local(stack), time: 5, replaces: replaces, backing: .anonymous))
    }

    private func tracker(stacks: [UInt64] = [1, 2], sampling: UInt64? = nil) -> Tracker {
        let t = Tracker(now: 1_000_000_000)
        space = t.openSpace(SpaceInfo(kind: .user, pid: 42, command: ["./app"], startNs: 0, samplingIntervalBytes: sampling))
        for s in stacks { t.apply(.stack(StackDefinition(id: s, frames: [0x1000 + s])), in: space) }
        return t
    }

    private func apply(_ t: Tracker, _ events: Event...) { for e in events { t.apply(e, in: space) } }

    /// Outstanding (bytes, blocks) per session stack of one kind, from the batch's totals.
    private func totals(_ b: SessionBatch, _ kind: BlockKind = .heap) -> [SessionStackID: [UInt64]] {
        var out: [SessionStackID: [UInt64]] = [:]
        for t in b.totals where t.kind == kind { out[t.stackID] = [t.bytes, t.blocks] }
        return out
    }

    private func live(_ b: SessionBatch, _ kind: BlockKind = .heap) -> LiveChanges {
        b.live[LiveTableKey(space: space, kind: kind)] ?? LiveChanges()
    }

    func testReallocFreesTheOldBlockAndChargesTheNewOneToTheReallocSite() {
        let t = tracker()
        apply(t, alloc(0xa0, 100, stack: 1), .free(address: 0xa0, kind: .heap, pending: true))
        apply(t, alloc(0xa0, 300, stack: 2, fn: .realloc, replaces: 0xa0))  // grew in place: still a free + a new block
        let b = t.cut(at: 1).batch
        XCTAssertEqual(totals(b), [1: [0, 0], 2: [300, 1]])
        XCTAssertEqual(live(b).puts.map { [$0.address, $0.size, UInt64($0.stackID)] }, [[0xa0, 300, 2]])
        XCTAssertEqual(live(b).puts.first?.function, .realloc)
        XCTAssertEqual(t.counters[.missedFrees, default: 0], 0)
    }

    func testFailedReallocRestoresTheOldBlock() {
        let t = tracker()
        apply(t, alloc(0xa0, 100, stack: 1))
        _ = t.cut(at: 1)
        apply(t, .free(address: 0xa0, kind: .heap, pending: true), .undo(address: 0xa0, kind: .heap))
        let b = t.cut(at: 2).batch
        XCTAssertEqual(totals(b), [1: [100, 1]])
        XCTAssertEqual(t.outstanding.bytes, 100)
        XCTAssertEqual(t.liveCount(.heap), 1)
        // The block was checkpointed before the pending free; it is removed and put again in one batch.
        XCTAssertEqual(live(b).removes, [0xa0])
        XCTAssertEqual(live(b).puts.map(\.size), [100])
    }

    func testAllocationAtALiveAddressCountsAMissedFreeAndReplaces() {
        let t = tracker()
        apply(t, alloc(0xb0, 64, stack: 1), alloc(0xb0, 32, stack: 2))
        let b = t.cut(at: 1).batch
        XCTAssertEqual(t.counters[.missedFrees], 1)
        XCTAssertEqual(totals(b), [1: [0, 0], 2: [32, 1]])
        XCTAssertEqual(t.outstanding.blocks, 1)
    }

    func testTheSameAllocationReportedTwiceIsCountedOnce() {
        // A snapshot of what was live and the stream after it can both carry one allocation.
        let t = tracker()
        apply(t, alloc(0xb0, 64, stack: 1, time: 5_000_000_000))
        _ = t.cut(at: 1)  // checkpointed: the second report must not make it new again
        apply(t, alloc(0xb0, 64, stack: 1, time: 5_000_000_000))
        let b = t.cut(at: 2).batch
        XCTAssertEqual(t.counters[.missedFrees] ?? 0, 0)
        XCTAssertEqual(t.outstanding.blocks, 1)
        XCTAssertEqual(t.outstanding.bytes, 64)
        XCTAssertTrue(live(b).puts.isEmpty, "\(live(b).puts)")
        // The same address and size at another time is another allocation: its free was missed.
        apply(t, alloc(0xb0, 64, stack: 1, time: 9_000_000_000))
        XCTAssertEqual(t.counters[.missedFrees], 1)
        XCTAssertEqual(t.outstanding.blocks, 1)
    }

    private static func liveBlock(_ a: Allocation) -> SnapshotBlock? {
        SnapshotBlock(address: a.address, size: a.size, kind: a.kind, function: a.function, stack: a.stack, time: a.time)
    }

    /// A block of the source's table is 32 bytes, and keeps what a resync and an attach need of the
    /// allocation.
    func testASnapshotBlockIsUnderHalfAnAllocationAndKeepsItsFacts() {
        XCTAssertEqual(MemoryLayout<SnapshotBlock>.stride, 32)
        XCTAssertLessThanOrEqual(MemoryLayout<SnapshotBlock>.stride * 2, MemoryLayout<Allocation>.stride, "else an Allocation would do")
        let a = Allocation(address: 0xa0, size: 24, kind: .heap, function: .calloc, stack: .local(7), time: 99)
        XCTAssertEqual(Self.liveBlock(a)?.allocation, a)
        let none = Allocation(address: 0xb0, size: 8, kind: .heap, function: .malloc, stack: .none, time: 1)
        XCTAssertEqual(Self.liveBlock(none)?.allocation, none)
        XCTAssertNil(SnapshotBlock(address: 1, size: 1, kind: .heap, function: .malloc, stack: .local(UInt64(UInt32.max)), time: 0), "an id that does not fit")
    }

    func testResynchronizeMakesTheLiveBlocksThoseOfTheSourcesTable() {
        let t = tracker()
        // The collector believes 0xa0 (its free was lost) and 0xb0; the source's table says 0xb0 and 0xc0
        // (whose allocation was lost), and 0xd0 at another size than the collector saw.
        apply(t, alloc(0xa0, 10, stack: 1), alloc(0xb0, 20, stack: 1), alloc(0xd0, 30, stack: 2))
        _ = t.cut(at: 1)
        let table = [
            Allocation(address: 0xb0, size: 20, kind: .heap, function: .malloc, stack: .local(1), time: 100),
            Allocation(address: 0xc0, size: 40, kind: .heap, function: .malloc, stack: .local(2), time: 200),
            Allocation(address: 0xd0, size: 35, kind: .heap, function: .malloc, stack: .local(2), time: 300),
        ]
        let (removed, added) = t.resynchronize(space, kind: .heap, to: table.compactMap(Self.liveBlock))
        XCTAssertEqual(removed, 2)  // 0xa0, and 0xd0 as it was
        XCTAssertEqual(added, 2)  // 0xc0, and 0xd0 as it is
        let b = t.cut(at: 2).batch
        XCTAssertEqual(totals(b), [1: [20, 1], 2: [75, 2]])
        XCTAssertEqual(Set(live(b).removes), [0xa0, 0xd0])
        XCTAssertEqual(Set(live(b).puts.map(\.address)), [0xc0, 0xd0])
        XCTAssertEqual(t.outstanding.blocks, 3)
        // What follows applies on top, as usual.
        apply(t, .free(address: 0xc0, kind: .heap, pending: false))
        XCTAssertEqual(t.outstanding.bytes, 55)
    }

    /// Every block held is in the source's table (only allocations were lost): nothing is removed but what
    /// changed, and what was missed is added.
    func testResynchronizeWithNoLostFreesOnlyAddsWhatWasMissed() {
        let t = tracker()
        apply(t, alloc(0xb0, 20, stack: 1), alloc(0xd0, 30, stack: 2))
        _ = t.cut(at: 1)
        let table = [
            Allocation(address: 0xc0, size: 40, kind: .heap, function: .malloc, stack: .local(2), time: 200),
            Allocation(address: 0xb0, size: 20, kind: .heap, function: .malloc, stack: .local(1), time: 100),
            Allocation(address: 0xd0, size: 35, kind: .heap, function: .malloc, stack: .local(2), time: 300),
            Allocation(address: 0xe0, size: 5, kind: .heap, function: .malloc, stack: .local(1), time: 400),
        ]
        let (removed, added) = t.resynchronize(space, kind: .heap, to: table.compactMap(Self.liveBlock))
        XCTAssertEqual(removed, 1)  // 0xd0 as it was
        XCTAssertEqual(added, 3)  // 0xc0, 0xe0, and 0xd0 as it is
        let b = t.cut(at: 2).batch
        XCTAssertEqual(totals(b), [1: [25, 2], 2: [75, 2]])
        XCTAssertEqual(Set(live(b).removes), [0xd0])
        XCTAssertEqual(t.outstanding.blocks, 4)
        XCTAssertEqual(t.outstanding.bytes, 100)
    }

    /// A resync read a slice at a time while the stream goes on: what the stream frees, allocates or reports
    /// again in the middle of it ends exactly as the source's table and the stream say, and only the block
    /// whose free was lost before the resync is dropped.
    func testAResyncReadInSlicesBesideTheStreamKeepsWhatEitherVouchesFor() throws {
        let t = tracker()
        // Held before the resync: a0, b0 (its free was lost), c0, d0.
        apply(t, alloc(0xa0, 10), alloc(0xb0, 20), alloc(0xc0, 30), alloc(0xd0, 40))
        XCTAssertTrue(t.beginResync(space, kind: .heap))
        let block = { (a: UInt64, size: UInt64, time: UInt64) in
            try XCTUnwrap(Self.liveBlock(Allocation(address: a, size: size, kind: .heap, function: .malloc, stack: .local(1), time: time)))
        }
        t.resync(space, block: try block(0xa0, 10, 100))  // slice 1
        // The stream between slices: c0 freed before the table was read there; f0 and e0 allocated after
        // the resync began (e0's record comes only after the table showed it).
        apply(t, .free(address: 0xc0, kind: .heap, pending: false), alloc(0xf0, 60, time: 500))
        t.resync(space, block: try block(0xe0, 50, 400))  // slice 2: e0's allocation record was lost, or is to come
        t.resync(space, block: try block(0xf0, 60, 500))
        t.resync(space, block: try block(0xd0, 40, 100))
        apply(t, .free(address: 0xa0, kind: .heap, pending: false), alloc(0x100, 70, time: 600), alloc(0xe0, 50, time: 400))
        let (removed, added) = t.finishResync(space, kind: .heap)
        XCTAssertEqual(removed, 1, "only b0, whose free was lost")
        XCTAssertEqual(added, 1, "only e0, which the table showed first")
        XCTAssertEqual(t.outstanding.blocks, 4)  // d0, e0, f0, 0x100
        XCTAssertEqual(t.outstanding.bytes, 40 + 50 + 60 + 70)
        XCTAssertEqual(totals(t.cut(at: 2).batch), [1: [220, 4]])
        XCTAssertEqual(t.counters[.missedFrees] ?? 0, 0, "e0 reported twice is one block, not a missed free")
        // Over: nothing is marked any more, and a later resync starts afresh.
        XCTAssertTrue(t.beginResync(space, kind: .heap))
        t.resync(space, block: try block(0xd0, 40, 100))
        XCTAssertEqual(t.finishResync(space, kind: .heap).removed, 3, "e0, f0 and 0x100 are not in this table")
        XCTAssertEqual(t.outstanding.blocks, 1)
    }

    /// The end of a collection: a cut is under way (its scan already past every shard) when the source's
    /// final resync adds blocks and the space closes. Those blocks were never scanned: the cut must not
    /// throw the space's table away, and the next cut writes them.
    func testBlocksAResyncAddsWhileACutIsUnderwayAreCheckpointedEvenIfTheSpaceCloses() {
        let t = tracker()
        for i in 0..<UInt64(1000) { apply(t, alloc(0x10_000 + 16 * i, 16, stack: 1)) }
        var job = t.beginCut()
        while !t.advance(&job, budget: Int.max) {}
        // The source's table: everything seen, and 500 blocks whose allocations were lost.
        var table = (0..<UInt64(1000)).map { Allocation(address: 0x10_000 + 16 * $0, size: 16, kind: .heap, function: .malloc, stack: .local(1), time: 100) }
        table += (0..<UInt64(500)).map { Allocation(address: 0x90_000 + 16 * $0, size: 16, kind: .heap, function: .malloc, stack: .local(2), time: 200) }
        XCTAssertEqual(t.resynchronize(space, kind: .heap, to: table.compactMap(Self.liveBlock)).added, 500)
        t.closeSpace(space, at: 2, end: .exited)
        let first = t.finishCut(&job, at: 2)
        XCTAssertEqual(live(first.batch).puts.count, 1000)
        let second = t.cut(at: 3).batch
        XCTAssertEqual(Set(live(second).puts.map(\.address)), Set((0..<UInt64(500)).map { 0x90_000 + 16 * $0 }))
        XCTAssertEqual(totals(first.batch)[2], [16 * 500, 500])
        // Checkpointed now: that cut could release the closed space's memory.
        XCTAssertTrue(live(t.cut(at: 4).batch).puts.isEmpty)
        XCTAssertEqual(t.outstanding.blocks, 1500)
    }

    func testTheSinkWantsLookAheadHintsOnlyOnceTheHeapOutgrowsTheCache() throws {
        let t = tracker()
        var sink = try XCTUnwrap(t.sink(for: space))
        let n = UInt64(Tracker.SpaceSink.hintedBlocks)
        for i in 0..<(n - 1) { sink.alloc(Allocation(address: 0x10_0000 + i * 16, size: 16, kind: .heap, function: .malloc, stack: .local(1), time: 100, tid: 7)) }
        XCTAssertFalse(sink.hintsWorthFetching, "\(n - 1) blocks fit the cache")
        XCTAssertNil(sink.lookupHint(address: 0x10_0000, kind: .mmap), "regions are never hinted")
        sink.alloc(Allocation(address: 0x10_0000 + (n - 1) * 16, size: 16, kind: .heap, function: .malloc, stack: .local(1), time: 100, tid: 7))
        XCTAssertTrue(sink.hintsWorthFetching)
        sink.free(address: 0x10_0000, kind: .heap, pending: false)
        XCTAssertFalse(sink.hintsWorthFetching, "back under the limit")
        XCTAssertEqual(t.liveCount(.heap), Int(n) - 1)
    }

    func testFreeOfAnUnknownAddressIsCountedAndHarmless() {
        let t = tracker()
        apply(t, .free(address: 0xdead, kind: .heap, pending: false))
        XCTAssertEqual(t.counters[.unmatchedFrees], 1)
        XCTAssertEqual(t.outstanding.blocks, 0)
    }

    func testUnknownStackIsChargedToTheEmptyStackAndCounted() {
        let t = tracker(stacks: [])
        apply(t, alloc(0xc0, 8, stack: 99))
        let b = t.cut(at: 1).batch
        XCTAssertEqual(t.counters[.unknownStacks], 1)
        XCTAssertEqual(live(b).puts.first?.stackID, StackTable.empty)
    }

    func testBlocksBornAndFreedWithinAnIntervalNeverReachTheCheckpoint() {
        let t = tracker()
        apply(t, alloc(0xd0, 10), .free(address: 0xd0, kind: .heap, pending: false))
        let b = t.cut(at: 1).batch
        XCTAssertEqual(live(b), LiveChanges())
        // The stack's cumulative totals still count it.
        XCTAssertEqual(b.totals.first { $0.stackID == 1 }?.totalBytes, 10)
    }

    func testHistoryHoldsOnlyTheStacksThatChanged() {
        let t = tracker()
        apply(t, alloc(0xe0, 10, stack: 1), alloc(0xe8, 20, stack: 2))
        XCTAssertEqual(Set(t.cut(at: 1).batch.history.map(\.stackID)), [1, 2])
        apply(t, alloc(0xf0, 5, stack: 2))
        let b = t.cut(at: 2).batch
        XCTAssertEqual(b.history.map { [UInt64($0.stackID), $0.bytes, $0.blocks] }, [[2, 25, 2]])
        XCTAssertEqual(b.interval?.outstanding[.heap], KindTotal(bytes: 35, blocks: 3))
        XCTAssertEqual(t.cut(at: 3).batch.history, [])
    }

    func testMmapRegionsSplitOnPartialUnmapAndMapFixedReplaces() {
        let t = tracker()
        let base: UInt64 = 0x7f00_0000_0000
        apply(t, mmap(base, 10 * 4096, stack: 1), .unmap(address: base + 4096, length: 4096, pending: false))
        var b = t.cut(at: 1).batch
        XCTAssertEqual(totals(b, .mmap), [1: [9 * 4096, 2]])
        // MAP_FIXED over pages 5..6 of the second piece: those pages now belong to stack 2.
        apply(t, mmap(base + 5 * 4096, 2 * 4096, stack: 2))
        b = t.cut(at: 2).batch
        XCTAssertEqual(totals(b, .mmap), [1: [7 * 4096, 3], 2: [2 * 4096, 1]])
        XCTAssertEqual(t.liveCount(.mmap), 4)
        // A length that is not a page multiple covers the whole last page.
        apply(t, .unmap(address: base, length: 1, pending: false))
        XCTAssertEqual(t.liveCount(.mmap), 3)
    }

    func testMremapKeepsTheBackingOfTheRegionItMoves() {
        let t = tracker()
        let base: UInt64 = 0x7f00_0000_0000
        apply(t, .alloc(Allocation(address: base, size: 4096, kind: .mmap, function: .mmap, stack: .local(1), time: 1, backing: .file)))
        apply(t, .unmap(address: base, length: 4096, pending: true))
        apply(t, .alloc(Allocation(address: base + 0x10000, size: 8192, kind: .mmap, function: .mremap, stack: .local(2), time: 2, replaces: base, backing: .anonymous)))
        let rows = live(t.cut(at: 1).batch, .mmap).puts
        XCTAssertEqual(rows.map { [$0.address, $0.size] }, [[base + 0x10000, 8192]])
        XCTAssertEqual(rows.first?.backing, .file)
        XCTAssertEqual(rows.first?.function, .mremap)
    }

    func testMremapMovesTheRegionToTheMremapSiteAndUndoRestoresIt() {
        let t = tracker()
        let base: UInt64 = 0x7f00_0000_0000
        apply(t, mmap(base, 2 * 4096, stack: 1), .unmap(address: base, length: 2 * 4096, pending: true))
        apply(t, mmap(base + 0x100000, 4 * 4096, stack: 2, replaces: base))
        var b = t.cut(at: 1).batch
        XCTAssertEqual(totals(b, .mmap), [1: [0, 0], 2: [4 * 4096, 1]])
        apply(t, .unmap(address: base + 0x100000, length: 4 * 4096, pending: true), .undo(address: base + 0x100000, kind: .mmap))
        b = t.cut(at: 2).batch
        XCTAssertEqual(totals(b, .mmap), [2: [4 * 4096, 1]])
        XCTAssertEqual(t.liveCount(.mmap), 1)
    }

    func testKernelStacksCarryTheirTaskAndKernelKindsHaveTheirOwnAddressTables() {
        let t = Tracker()
        let kernel = t.openSpace(SpaceInfo(kind: .kernel, pid: nil, command: ["leakcollect", "--kernel"], startNs: 0))
        let task = TaskIdentity(pid: 42, comm: TaskName("pipehog"))
        t.apply(.stack(StackDefinition(id: 1, frames: [0xffff_ffff_8100_0000, 0xffff_ffff_8100_1000], task: task)), in: kernel)
        t.apply(.alloc(Allocation(address: 0x1000, size: 192, kind: .kernelSlab, function: .kmalloc, stack: .local(1), time: 1)), in: kernel)
        t.apply(.alloc(Allocation(address: 0x1000, size: 4096, kind: .kernelPage, function: .pageAlloc, stack: .local(1), time: 1)), in: kernel)
        let cut = t.cut(at: 1)
        XCTAssertEqual(t.counters[.missedFrees, default: 0], 0)
        XCTAssertEqual(Set(cut.batch.live.keys.map(\.kind)), [.kernelSlab, .kernelPage])
        XCTAssertEqual(cut.newStacks.first { $0.id == 1 }?.task, task)
        XCTAssertEqual(cut.newStacks.first { $0.id == 1 }?.origin, .kernel)
    }

    func testTwoProcessesKeepTheirOwnAddressesStacksAndModules() {
        let t = Tracker()
        let a = t.openSpace(SpaceInfo(kind: .user, pid: 100, command: ["a"], startNs: 0))
        let b = t.openSpace(SpaceInfo(kind: .user, pid: 200, command: ["b"], startNs: 0))
        for s in [a, b] { t.apply(.stack(StackDefinition(id: 1, frames: [0x1000])), in: s) }
        // The same address and the same source stack id in two processes are two blocks of two stacks.
        t.apply(alloc(0x5000, 10), in: a)
        t.apply(alloc(0x5000, 20), in: b)
        t.apply(.free(address: 0x5000, kind: .heap, pending: false), in: a)
        let cut = t.cut(at: 1)
        XCTAssertEqual(t.counters[.missedFrees, default: 0], 0)
        XCTAssertEqual(t.outstanding.bytes, 20)
        XCTAssertEqual(cut.newStacks.filter { $0.id != 0 }.map(\.space).sorted(), [a, b])
        XCTAssertEqual(cut.batch.live[LiveTableKey(space: b, kind: .heap)]?.puts.map(\.size), [20])
        XCTAssertNil(cut.batch.live[LiveTableKey(space: a, kind: .heap)])
        XCTAssertEqual(t.liveCount(in: a), 0)
        XCTAssertEqual(t.liveCount(in: b), 1)
    }

    func testAClosedSpaceKeepsItsOutstandingBlocksAndIgnoresLaterEvents() {
        let t = tracker()
        apply(t, alloc(0x10, 100))
        t.closeSpace(space, at: 5, end: .exec)
        apply(t, alloc(0x20, 50))
        let b = t.cut(at: 6).batch
        XCTAssertEqual(t.outstanding.bytes, 100)
        XCTAssertEqual(live(b).puts.map(\.size), [100])
        XCTAssertEqual(b.spaces.first?.end, .exec)
        XCTAssertEqual(t.counters[.eventsWithoutSpace], 1)
    }

    func testPeakIsExactAndStacksRememberWhatTheyHeldAtIt() {
        let t = tracker()
        // 100 MiB from stack 1, freed; then 1 MiB leaked from stack 2: the peak is the 100 MiB.
        apply(t, alloc(0x1000, 100 << 20, stack: 1, time: 10))
        apply(t, .free(address: 0x1000, kind: .heap, pending: false))
        apply(t, alloc(0x2000, 1 << 20, stack: 2, time: 20))
        let b = t.cut(at: 30).batch
        let all = b.peaks.first { $0.dimension == .all }
        XCTAssertEqual(all?.bytes, 100 << 20)
        XCTAssertEqual(all?.blocks, 1)
        XCTAssertEqual(all?.timeNs, 10)
        let epoch = all?.epoch ?? 0
        let at = Dictionary(uniqueKeysWithValues: b.totals.map { ($0.stackID, $0.atPeak(of: .all, epoch: epoch)) })
        XCTAssertEqual(at[1]?.bytes, 100 << 20)
        XCTAssertEqual(at[2]?.bytes, 0)
        XCTAssertEqual(b.peaks.first { $0.dimension == .kind(.heap) }?.bytes, 100 << 20)
    }

    func testPeakOfAStackUntouchedSinceThePeakIsItsCurrentValue() {
        let t = tracker()
        apply(t, alloc(0x1000, 10, stack: 1, time: 1))
        _ = t.cut(at: 2)
        apply(t, alloc(0x2000, 30, stack: 2, time: 3))  // new peak 40: stack 1 still holds 10 and is not rewritten
        let b = t.cut(at: 4).batch
        let all = b.peaks.first { $0.dimension == .all }
        XCTAssertEqual(all?.bytes, 40)
        XCTAssertNil(b.totals.first { $0.stackID == 1 })
        // The reader's rule for a row not rewritten: its current value.
        let stale = TotalRow(stackID: 1, kind: .heap, bytes: 10, blocks: 1, totalBytes: 10, totalBlocks: 1, allPeakEpoch: 1)
        XCTAssertEqual(stale.atPeak(of: .all, epoch: all?.epoch ?? 0).bytes, 10)
    }

    func testTemporariesAreBlocksFreedBeforeTheirThreadAllocatedAgain() {
        let t = tracker()
        apply(t, alloc(0x10, 8, stack: 1, tid: 1), .free(address: 0x10, kind: .heap, pending: false))  // temporary
        apply(t, alloc(0x20, 8, stack: 1, tid: 1), alloc(0x30, 8, stack: 2, tid: 1))
        apply(t, .free(address: 0x20, kind: .heap, pending: false))  // thread 1 allocated since: not temporary
        apply(t, alloc(0x40, 8, stack: 1, tid: 2), alloc(0x50, 8, stack: 2, tid: 1))
        apply(t, .free(address: 0x40, kind: .heap, pending: false))  // thread 2's latest: temporary
        let b = t.cut(at: 1).batch
        let s1 = b.totals.first { $0.stackID == 1 }
        XCTAssertEqual(s1?.temporaryBlocks, 2)
        XCTAssertEqual(s1?.temporaryBytes, 16)
        XCTAssertEqual(s1?.lifetimes?.counts.reduce(0, +), 3)
    }

    func testLifetimesAreBucketedFromTheSourcesClock() {
        let t = tracker()
        apply(t, alloc(0x10, 100, stack: 1, time: 1_000_000_000))
        apply(t, alloc(0x20, 1, stack: 2, time: 1_000_000_000 + 3_000_000_000))  // the clock moves 3 s on
        apply(t, .free(address: 0x10, kind: .heap, pending: false))
        let h = t.cut(at: 1).batch.totals.first { $0.stackID == 1 }?.lifetimes
        XCTAssertEqual(h?.shorterThan(2_000_000_000).blocks, 0)
        XCTAssertEqual(h?.shorterThan(5_000_000_000).blocks, 1)
        XCTAssertEqual(h?.shorterThan(5_000_000_000).bytes, 100)
    }

    func testSampledBlocksStandForTheirWeight() {
        let t = tracker(sampling: 4096)
        apply(t, alloc(0x10, 16, stack: 1), alloc(0x20, 8192, stack: 2))
        let b = t.cut(at: 1).batch
        let w = SamplingWeight.weight(size: 16, interval: 4096)
        XCTAssertEqual(totals(b)[1], [UInt64((16 * w).rounded()), UInt64(w.rounded())])
        XCTAssertEqual(totals(b)[2], [8192, 1], "blocks of at least the interval are exact")
        apply(t, .free(address: 0x10, kind: .heap, pending: false))
        XCTAssertEqual(totals(t.cut(at: 2).batch)[1], [0, 0])
    }

    func testDepthLimitCutsStacksAndMarksThemTruncated() {
        let t = Tracker(maxDepth: 2)
        let s = t.openSpace(SpaceInfo(kind: .user, pid: 1, command: [], startNs: 0))
        t.apply(.stack(StackDefinition(id: 1, frames: [1, 2, 3, 4])), in: s)
        let stack = t.cut(at: 1).newStacks.first { $0.id == 1 }
        XCTAssertEqual(stack?.frames.map(\.address), [1, 2])
        XCTAssertEqual(stack?.truncated, true)
    }

    func testLifetimeBucketsMatchTheirBounds() {
        XCTAssertEqual(LifetimeHistogram.bucketCount, LifetimeHistogram.boundsNs.count + 1)
        XCTAssertEqual(LifetimeHistogram.bucket(lifetimeNs: 999_999), 0)
        XCTAssertEqual(LifetimeHistogram.bucket(lifetimeNs: 1_000_000), 1)
        XCTAssertEqual(LifetimeHistogram.bucket(lifetimeNs: 2_000_000_000_000), LifetimeHistogram.bucketCount - 1)
    }

    func testTaskNamesKeepFifteenBytes() {
        XCTAssertEqual(TaskName("pipehog").description, "pipehog")
        XCTAssertEqual(TaskName("a-very-long-command-name").description, "a-very-long-com")
        XCTAssertEqual(TaskName(bytes: Array("kworker/0:1".utf8) + [0, 65, 66]).description, "kworker/0:1")
        XCTAssertEqual(TaskName("x"), TaskName(bytes: [120, 0]))
    }

    func testStacksResolveAgainstTheModulesLoadedWhenTheyArrived() {
        let t = tracker(stacks: [])
        let lib = ModuleInfo(id: 3, path: "/tmp/libplugin.so", buildID: [0xab, 0x01], bias: 0x7000, lo: 0x7000, hi: 0x9000)
        apply(t, .module(lib), .stack(StackDefinition(id: 1, frames: [0x7100, 0x1])), .moduleUnload(id: 3, time: 9))
        let other = ModuleInfo(id: 4, path: "/tmp/libother.so", buildID: [], bias: 0x7000, lo: 0x7000, hi: 0x9000)
        apply(t, .module(other), .stack(StackDefinition(id: 2, frames: [0x7100], truncated: true)))
        let cut = t.cut(at: 1)
        let byID = Dictionary(uniqueKeysWithValues: cut.newStacks.map { ($0.id, $0) })
        let paths = Dictionary(uniqueKeysWithValues: cut.newModules.map { ($0.sessionID, $0.info.path) })
        XCTAssertEqual(byID[1]?.frames.map { paths[$0.moduleID] }, ["/tmp/libplugin.so", nil])
        XCTAssertEqual(byID[2]?.frames.map { paths[$0.moduleID] }, ["/tmp/libother.so"])
        XCTAssertEqual(byID[2]?.truncated, true)
        XCTAssertEqual(cut.batch.modules.map(\.path), ["/tmp/libplugin.so", "/tmp/libother.so"])
        XCTAssertEqual(cut.batch.modules.first?.buildID, "ab01")
        XCTAssertEqual(cut.batch.moduleUnloads.map(\.id), [1])
    }

    func testStacksAndModulesTakenForSymbolsEarlyAreNotCutAgainButTheModuleRowIs() {
        let t = tracker(stacks: [])
        let lib = ModuleInfo(id: 3, path: "/tmp/libplugin.so", buildID: [], bias: 0x7000, lo: 0x7000, hi: 0x9000)
        apply(t, .module(lib), .stack(StackDefinition(id: 1, frames: [0x7100])))
        XCTAssertTrue(t.hasNewStacks)
        let early = t.takeNewStacks()
        XCTAssertFalse(t.hasNewStacks)
        XCTAssertEqual(early.modules.map(\.info.path), ["/tmp/libplugin.so"])
        XCTAssertEqual(early.stacks.map(\.id), [0, 1])
        XCTAssertEqual(early.stacks.last?.frames.map(\.moduleID), [early.modules.first?.sessionID ?? -1])
        apply(t, .stack(StackDefinition(id: 2, frames: [0x7200])), alloc(0x100, 8, stack: 1), alloc(0x200, 8, stack: 2))
        let cut = t.cut(at: 1)
        XCTAssertEqual(cut.newStacks.map(\.id), [2])
        XCTAssertTrue(cut.newModules.isEmpty)
        XCTAssertEqual(cut.batch.modules.map(\.path), ["/tmp/libplugin.so"])
        XCTAssertEqual(totals(cut.batch), [1: [8, 1], 2: [8, 1]])
    }
}
