import SessionStore
import Vocabulary

/// Everything the tracker keeps for one address space: its live blocks per kind, its mapped regions,
/// its modules, the translation of its source's stack ids, and what changed since the last cut.
final class SpaceState {
    let id: SpaceID
    var row: SpaceRow
    var rowDirty = true
    /// One table per block kind that occurs in the space (a process has heap, the kernel slab/page/percpu).
    private var tables: [AddressTable?] = Array(repeating: nil, count: BlockKind.allCases.count)
    var regions = MappedRegions()
    var modules = ModuleMap()
    var stackIDs = StackIDMap()
    var temporaries = TemporaryAllocations()
    /// realloc/mremap frees whose outcome is not known yet, by address.
    var pendingBlocks: [UInt64: (BlockKind, Block)] = [:]
    var pendingPieces: [UInt64: [Region]] = [:]
    /// Blocks allocated since the last cut (kind slot, address), to checkpoint if still live then.
    var newBlocks: [(UInt8, UInt64)] = []
    /// Checkpointed blocks that went away since the last cut, per kind slot.
    var removed: [[UInt64]] = Array(repeating: [], count: BlockKind.allCases.count)
    /// The latest event time seen: frees carry no time of their own.
    var clock: UInt64
    let samplingInterval: UInt64?

    init(id: SpaceID, info: SpaceInfo) {
        self.id = id
        row = SpaceRow(id: id, info: info)
        clock = info.startNs
        samplingInterval = info.samplingIntervalBytes
    }

    @inline(__always) func table(_ kind: BlockKind) -> AddressTable {
        let k = kind.slot
        if let t = tables[k] { return t }
        let t = AddressTable()
        tables[k] = t
        return t
    }

    func existingTable(_ kind: BlockKind) -> AddressTable? { tables[kind.slot] }

    /// Live blocks of every kind (regions included).
    var liveCount: Int { tables.reduce(0) { $0 + ($1?.count ?? 0) } + regions.count }

    func liveCount(_ kind: BlockKind) -> Int { kind == .mmap ? regions.count : tables[kind.slot]?.count ?? 0 }

    @inline(__always) func weighted(_ size: UInt64) -> (bytes: UInt64, blocks: UInt64) {
        SamplingWeight.weighted(size: size, interval: samplingInterval)
    }

    /// The image is gone (exit, exec, detach): no event can change its blocks any more. Once its last
    /// changes are checkpointed, the memory of its live table can go; the session keeps what it left.
    var closed = false

    func releaseLiveMemory() {
        for t in tables { t?.removeAll() }
        pendingBlocks.removeAll()
        pendingPieces.removeAll()
    }
}
