import SessionStore

/// Outstanding and cumulative bytes/blocks per stack and kind, with the set that changed since the
/// last flush (which becomes that interval's snapshot).
struct StackTotals {
    private struct Entry {
        var bytes: UInt64 = 0
        var blocks: UInt64 = 0
        var totalBytes: UInt64 = 0
        var totalBlocks: UInt64 = 0
        var dirty = false
    }

    /// One array per kind, indexed by session stack id: stack ids are dense.
    private var byKind: [[Entry]] = Array(repeating: [], count: BlockKind.allCases.count)
    private var dirty: [(Int, SessionStackID)] = []
    private(set) var outstanding: (bytes: UInt64, blocks: UInt64) = (0, 0)

    @inline(__always) private mutating func touch(_ stack: SessionStackID, _ kind: BlockKind, _ body: (inout Entry) -> Void) {
        let k = kind.slot
        let i = Int(stack)
        if i >= byKind[k].count { byKind[k].append(contentsOf: repeatElement(Entry(), count: i + 1 - byKind[k].count)) }
        body(&byKind[k][i])
        if !byKind[k][i].dirty {
            byKind[k][i].dirty = true
            dirty.append((k, stack))
        }
    }

    mutating func add(stack: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64, newAllocation: Bool) {
        touch(stack, kind) { e in
            e.bytes &+= bytes
            e.blocks &+= blocks
            if newAllocation {
                e.totalBytes &+= bytes
                e.totalBlocks &+= blocks
            }
        }
        outstanding.bytes &+= bytes
        outstanding.blocks &+= blocks
    }

    mutating func remove(stack: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64) {
        var took: (UInt64, UInt64) = (0, 0)
        touch(stack, kind) { e in
            // Clamp rather than wrap: a source that lies about sizes must not produce absurd totals.
            took = (min(bytes, e.bytes), min(blocks, e.blocks))
            e.bytes -= took.0
            e.blocks -= took.1
        }
        outstanding.bytes -= min(took.0, outstanding.bytes)
        outstanding.blocks -= min(took.1, outstanding.blocks)
    }

    /// Changes the region count of a stack (an unmap that split or removed a region).
    mutating func adjustBlocks(stack: SessionStackID, kind: BlockKind, by delta: Int) {
        if delta > 0 {
            touch(stack, kind) { $0.blocks &+= UInt64(delta) }
            outstanding.blocks &+= UInt64(delta)
        } else if delta < 0 {
            remove(stack: stack, kind: kind, bytes: 0, blocks: UInt64(-delta))
        }
    }

    /// Rows for every entry that changed, as totals and as the snapshot at `time`.
    mutating func takeChanges(at time: UInt64) -> ([TotalRow], [SnapshotRow]) {
        var totals: [TotalRow] = []
        var snap: [SnapshotRow] = []
        totals.reserveCapacity(dirty.count)
        snap.reserveCapacity(dirty.count)
        for (k, stack) in dirty {
            byKind[k][Int(stack)].dirty = false
            let e = byKind[k][Int(stack)]
            let kind = BlockKind.allCases[k]
            totals.append(TotalRow(stackID: stack, kind: kind, bytes: e.bytes, blocks: e.blocks, totalBytes: e.totalBytes, totalBlocks: e.totalBlocks))
            snap.append(SnapshotRow(timeNs: time, stackID: stack, kind: kind, bytes: e.bytes, blocks: e.blocks))
        }
        dirty.removeAll(keepingCapacity: true)
        return (totals, snap)
    }
}

extension BlockKind {
    /// Position in `allCases`, without a lookup on the per-event path.
    @inline(__always) var slot: Int {
        switch self {
        case .heap: return 0
        case .mmap: return 1
        case .kernelSlab: return 2
        case .kernelPage: return 3
        case .kernelPercpu: return 4
        }
    }
}
