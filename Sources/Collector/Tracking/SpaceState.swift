import SessionStore
import Vocabulary

/// Everything the tracker keeps for one address space: its live blocks per kind, its mapped regions,
/// its modules, the translation of its source's stack ids, and what changed since the last cut.
final class SpaceState {
    let id: SpaceID
    var row: SpaceRow
    var rowDirty = true
    /// One table per block kind (a process uses heap, the kernel slab/page/percpu; mmap regions live in
    /// `regions`). `let` properties chosen by a switch: the optimizer then skips retain/release per event,
    /// which it does not for a table fetched from an array.
    private let heap = AddressTable()
    private let slab = AddressTable()
    private let pages = AddressTable()
    private let percpu = AddressTable()
    var regions = MappedRegions()
    var modules = ModuleMap()
    var stackIDs = StackIDMap()
    let temporaries = TemporaryAllocations()
    /// realloc/mremap frees whose outcome is not known yet, by address.
    var pendingBlocks: [UInt64: (BlockKind, Block)] = [:]
    var pendingPieces: [UInt64: [Region]] = [:]
    /// Checkpointed blocks that went away since the last cut, per kind slot.
    var removed: [[UInt64]] = Array(repeating: [], count: BlockKind.allCases.count)
    /// What the resync under way removed and added so far (`Tracker.beginResync`).
    var resyncCounts = (removed: 0, added: 0)
    /// The latest event time seen: frees carry no time of their own.
    var clock: UInt64
    let samplingInterval: UInt64?

    deinit {
        for t in [heap, slab, pages, percpu] { t.deallocate() }
        temporaries.deallocate()
    }

    init(id: SpaceID, info: SpaceInfo) {
        self.id = id
        row = SpaceRow(id: id, info: info)
        clock = info.startNs
        samplingInterval = info.samplingIntervalBytes
    }

    @inline(__always) func table(_ kind: BlockKind) -> AddressTable {
        switch kind {
        case .heap, .mmap: return heap
        case .kernelSlab: return slab
        case .kernelPage: return pages
        case .kernelPercpu: return percpu
        }
    }

    /// Live blocks of every kind (regions included).
    var liveCount: Int { heap.count + slab.count + pages.count + percpu.count + regions.count }

    func liveCount(_ kind: BlockKind) -> Int { kind == .mmap ? regions.count : table(kind).count }

    @inline(__always) func weighted(_ size: UInt64) -> (bytes: UInt64, blocks: UInt64) {
        samplingInterval == nil ? (size, 1) : SamplingWeight.weighted(size: size, interval: samplingInterval)
    }

    /// The image is gone (exit, exec, detach): no event can change its blocks any more. Once its last
    /// changes are checkpointed, the memory of its live table can go; the session keeps what it left.
    var closed = false

    private(set) var released = false

    func releaseLiveMemory() {
        released = true
        for t in [heap, slab, pages, percpu] { t.removeAll() }
        pendingBlocks.removeAll()
        pendingPieces.removeAll()
    }
}
