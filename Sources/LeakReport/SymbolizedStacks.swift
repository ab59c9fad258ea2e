import SessionStore
import Vocabulary

/// Which stacks read the same once symbolized. The session keys stacks by address, and a library that
/// was dlopen'ed and dlclosed again and again sits at a new address each time: one leak site becomes
/// hundreds of stacks of one allocation each. Two stacks are the same here when every frame has the same
/// function, offset, module, file offset, file and line; a frame nothing could name keeps its address.
/// Computed once per stack-tree node in one pass (`StackPaths`).
struct SymbolizedStacks {
    /// Per tree node: the id of its path from the root, with equal paths under one id.
    private var pathIDs: [Int32]
    private let catalog: StackCatalog
    /// The process of each user space: stacks of different processes never merge.
    private let pids: [SpaceID: Int32]

    init(_ catalog: StackCatalog, pids: [SpaceID: Int32] = [:]) {
        self.catalog = catalog
        self.pids = pids
        var frameIDs: [[FrameRow]: Int32] = [:]
        let locationIDs: [Int32] = catalog.locationFrames.map { frames in
            let key = frames.map { f -> FrameRow in
                var k = f
                if f.function != nil || f.fileOffset != nil || f.file != nil { k.address = 0 }
                return k
            }
            if let id = frameIDs[key] { return id }
            let id = Int32(frameIDs.count)
            frameIDs[key] = id
            return id
        }
        if frameIDs.count == catalog.locationFrames.count {
            // No two locations read the same (no library reloaded elsewhere): the writer stores each
            // (parent, location) node once, so each node's path is its own and there is nothing to number.
            pathIDs = catalog.parents.indices.map { Int32(truncatingIfNeeded: $0) }
            return
        }
        var paths = StackPaths(capacity: catalog.parents.count)
        let ids = paths.number(catalog, locationKeys: locationIDs)
        pathIDs = ids
    }

    /// What a report merges on: the symbolized path, and the stack's own facts that a report shows.
    struct Key: Hashable {
        var path: Int32
        /// A stack the catalog does not hold stays apart from every other.
        var missing: SessionStackID?
        var kind: BlockKind
        var origin: StackOrigin?
        var truncated: Bool
        var taskPid: Int32?
        var taskComm: String?
        var pid: Int32?
    }

    func key(_ stack: SessionStackID, kind: BlockKind) -> Key {
        guard let s = catalog.stacks[stack] else { return Key(path: 0, missing: stack, kind: kind, truncated: false) }
        return Key(
            path: pathIDs[Int(s.leaf)], kind: kind, origin: s.origin, truncated: s.truncated, taskPid: s.taskPid, taskComm: s.taskComm,
            pid: pids[s.space])
    }
}
