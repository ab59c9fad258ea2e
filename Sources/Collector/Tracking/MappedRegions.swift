import SessionStore
import Vocabulary

/// A live mapping, page-granular, [start, end).
struct Region: Equatable {
    var start: UInt64
    var end: UInt64
    var stack: SessionStackID
    var time: UInt64
    var tid: UInt32
    var function: AllocFunction
    var backing: Backing
    var persisted = false

    var size: UInt64 { end - start }
}

/// The part of a region that an unmap removed, and how the region count of its stack changed.
struct RemovedPiece: Equatable {
    var piece: Region
    /// -1 when a whole region went, +1 when unmapping its middle split it in two, 0 when trimmed.
    var blocksDelta: Int
}

/// Live mmap regions, sorted by start, with the exact semantics of munmap and mremap on page ranges:
/// unmapping the middle of a region leaves two regions, one munmap may cover several, and a new
/// mapping replaces whatever it overlaps (MAP_FIXED). Also remembers which rows the session must
/// delete or rewrite at the next flush.
struct MappedRegions {
    private(set) var regions: [Region] = []
    /// Starts whose persisted rows must be deleted.
    private(set) var deletedRows: [UInt64] = []
    /// Starts whose rows must be (re)written.
    private(set) var dirtyStarts: Set<UInt64> = []

    var count: Int { regions.count }

    /// Index of the first region whose end is above `address`.
    private func firstEnding(above address: UInt64) -> Int {
        var lo = 0, hi = regions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if regions[mid].end <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    private mutating func dropRow(_ r: Region) {
        if r.persisted { deletedRows.append(r.start) }
        dirtyStarts.remove(r.start)
    }

    /// Removes [lo, hi) from every region it overlaps and returns what was removed.
    mutating func remove(_ lo: UInt64, _ hi: UInt64) -> [RemovedPiece] {
        guard lo < hi else { return [] }
        var removed: [RemovedPiece] = []
        var i = firstEnding(above: lo)
        while i < regions.count, regions[i].start < hi {
            let r = regions[i]
            if r.start >= lo && r.end <= hi {
                regions.remove(at: i)
                dropRow(r)
                removed.append(RemovedPiece(piece: r, blocksDelta: -1))
                continue
            }
            if r.start < lo && r.end > hi {
                // The middle goes: the left part keeps the row, the right part is a new region.
                var piece = r
                piece.start = lo
                piece.end = hi
                var right = r
                right.start = hi
                right.persisted = false
                regions[i].end = lo
                dirtyStarts.insert(r.start)
                regions.insert(right, at: i + 1)
                dirtyStarts.insert(right.start)
                removed.append(RemovedPiece(piece: piece, blocksDelta: 1))
                return removed
            }
            if r.start < lo {
                var piece = r
                piece.start = lo
                regions[i].end = lo
                dirtyStarts.insert(r.start)
                removed.append(RemovedPiece(piece: piece, blocksDelta: 0))
                i += 1
                continue
            }
            // r.start >= lo, r.end > hi: the front goes, and the start (the row's key) moves.
            var piece = r
            piece.end = hi
            dropRow(r)
            regions[i].start = hi
            regions[i].persisted = false
            dirtyStarts.insert(hi)
            removed.append(RemovedPiece(piece: piece, blocksDelta: 0))
            i += 1
        }
        return removed
    }

    /// Adds a region; the caller has removed whatever it overlapped.
    mutating func insert(_ r: Region) {
        let i = firstEnding(above: r.start)
        regions.insert(r, at: i)
        dirtyStarts.insert(r.start)
    }

    /// The rows to delete and write since the last call, and marks the written ones persisted.
    mutating func takeChanges() -> (deleted: [UInt64], written: [Region]) {
        let deleted = deletedRows
        deletedRows.removeAll(keepingCapacity: true)
        var written: [Region] = []
        for start in dirtyStarts {
            let i = firstEnding(above: start)
            if i < regions.count, regions[i].start == start {
                regions[i].persisted = true
                written.append(regions[i])
            }
        }
        dirtyStarts.removeAll(keepingCapacity: true)
        return (deleted, written.sorted { $0.start < $1.start })
    }
}
