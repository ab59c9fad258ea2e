import SessionStore
import Vocabulary

/// Outstanding and cumulative bytes/blocks per stack and kind, temporaries and lifetimes of what was
/// freed, the exact peaks (over every kind and per kind) with what each stack held at them, and the set
/// of entries that changed since the last cut (which becomes that interval's history).
///
/// Peaks are exact to the event: when a total passes its maximum, the peak's epoch advances in O(1);
/// an entry copies its value before its first change after a peak ("value at the peak"), so entries
/// untouched since the peak still hold it as their current value.
struct StackTotals {
    private struct Entry {
        var bytes: UInt64 = 0
        var blocks: UInt64 = 0
        var totalBytes: UInt64 = 0
        var totalBlocks: UInt64 = 0
        var temporaryBlocks: UInt64 = 0
        var temporaryBytes: UInt64 = 0
        var peakBytes: UInt64 = 0
        var peakBlocks: UInt64 = 0
        var peakEpoch: UInt64 = 0
        var allPeakBytes: UInt64 = 0
        var allPeakBlocks: UInt64 = 0
        var allPeakEpoch: UInt64 = 0
        /// Index into `lifetimes`, or -1: most stacks never free anything.
        var lifetimeIndex: Int32 = -1
        var dirty = false
    }

    private struct Peak {
        var epoch: UInt64 = 0
        var timeNs: UInt64 = 0
        var bytes: UInt64 = 0
        var blocks: UInt64 = 0
        var dirty = false
    }

    /// One array per kind, indexed by session stack id: stack ids are dense.
    private var byKind: [[Entry]] = Array(repeating: [], count: BlockKind.allCases.count)
    private var lifetimes: [LifetimeHistogram] = []
    private var dirty: [(Int, SessionStackID)] = []
    private var kindTotals = Array(repeating: KindTotal(), count: BlockKind.allCases.count)
    private var all = KindTotal()
    private var kindPeaks = Array(repeating: Peak(), count: BlockKind.allCases.count)
    private var allPeak = Peak()

    var outstanding: (bytes: UInt64, blocks: UInt64) { (all.bytes, all.blocks) }

    func outstanding(_ kind: BlockKind) -> KindTotal { kindTotals[kind.slot] }

    @inline(__always) private mutating func touch(_ stack: SessionStackID, _ k: Int, _ body: (inout Entry) -> Void) {
        let i = Int(stack)
        if i >= byKind[k].count {
            byKind[k].append(contentsOf: repeatElement(Entry(), count: max(i + 1 - byKind[k].count, byKind[k].count / 2)))
        }
        byKind[k].withUnsafeMutableBufferPointer { entries in
            let kp = kindPeaks[k].epoch, ap = allPeak.epoch
            // The entry's value at the latest peaks, kept before its first change after them.
            if entries[i].peakEpoch != kp {
                entries[i].peakBytes = entries[i].bytes
                entries[i].peakBlocks = entries[i].blocks
                entries[i].peakEpoch = kp
            }
            if entries[i].allPeakEpoch != ap {
                entries[i].allPeakBytes = entries[i].bytes
                entries[i].allPeakBlocks = entries[i].blocks
                entries[i].allPeakEpoch = ap
            }
            body(&entries[i])
            if !entries[i].dirty {
                entries[i].dirty = true
                dirty.append((k, stack))
            }
        }
    }

    /// Adds an allocation (or a block live again after a failed realloc) at `time`.
    mutating func add(stack: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64, newAllocation: Bool, time: UInt64) {
        let k = kind.slot
        touch(stack, k) { e in
            e.bytes &+= bytes
            e.blocks &+= blocks
            if newAllocation {
                e.totalBytes &+= bytes
                e.totalBlocks &+= blocks
            }
        }
        kindTotals[k].bytes &+= bytes
        kindTotals[k].blocks &+= blocks
        all.bytes &+= bytes
        all.blocks &+= blocks
        if kindTotals[k].bytes > kindPeaks[k].bytes { Self.raise(&kindPeaks[k], to: kindTotals[k], at: time) }
        if all.bytes > allPeak.bytes { Self.raise(&allPeak, to: all, at: time) }
    }

    private static func raise(_ p: inout Peak, to t: KindTotal, at time: UInt64) {
        p.epoch &+= 1
        p.timeNs = time
        p.bytes = t.bytes
        p.blocks = t.blocks
        p.dirty = true
    }

    mutating func remove(stack: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64) {
        let k = kind.slot
        var took: (UInt64, UInt64) = (0, 0)
        touch(stack, k) { e in
            // Clamp rather than wrap: a source that lies about sizes must not produce absurd totals.
            took = (min(bytes, e.bytes), min(blocks, e.blocks))
            e.bytes -= took.0
            e.blocks -= took.1
        }
        kindTotals[k].bytes -= min(took.0, kindTotals[k].bytes)
        kindTotals[k].blocks -= min(took.1, kindTotals[k].blocks)
        all.bytes -= min(took.0, all.bytes)
        all.blocks -= min(took.1, all.blocks)
    }

    /// A freed block's lifetime, and whether it was temporary (freed before its thread allocated again).
    mutating func freed(stack: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64, lifetimeNs: UInt64, temporary: Bool) {
        let k = kind.slot
        var index: Int32 = -1
        touch(stack, k) { e in
            if temporary {
                e.temporaryBlocks &+= blocks
                e.temporaryBytes &+= bytes
            }
            index = e.lifetimeIndex
        }
        if index < 0 {
            index = Int32(lifetimes.count)
            lifetimes.append(LifetimeHistogram())
            byKind[k][Int(stack)].lifetimeIndex = index
        }
        lifetimes[Int(index)].add(lifetimeNs: lifetimeNs, bytes: bytes, count: blocks)
    }

    /// Changes the region count of a stack (an unmap that split or removed a region).
    mutating func adjustBlocks(stack: SessionStackID, kind: BlockKind, by delta: Int, time: UInt64) {
        if delta > 0 {
            add(stack: stack, kind: kind, bytes: 0, blocks: UInt64(delta), newAllocation: false, time: time)
        } else if delta < 0 {
            remove(stack: stack, kind: kind, bytes: 0, blocks: UInt64(-delta))
        }
    }

    /// Rows for every entry that changed, its history point, and the peaks that moved.
    mutating func takeChanges() -> (totals: [TotalRow], history: [HistoryPoint], peaks: [PeakRow]) {
        var totals: [TotalRow] = []
        var history: [HistoryPoint] = []
        totals.reserveCapacity(dirty.count)
        history.reserveCapacity(dirty.count)
        for (k, stack) in dirty {
            byKind[k][Int(stack)].dirty = false
            let e = byKind[k][Int(stack)]
            let kind = BlockKind.allCases[k]
            // An entry copied before the latest peak holds its value at it as its current value.
            let atKind = e.peakEpoch == kindPeaks[k].epoch ? (e.peakBytes, e.peakBlocks) : (e.bytes, e.blocks)
            let atAll = e.allPeakEpoch == allPeak.epoch ? (e.allPeakBytes, e.allPeakBlocks) : (e.bytes, e.blocks)
            totals.append(
                TotalRow(
                    stackID: stack, kind: kind, bytes: e.bytes, blocks: e.blocks, totalBytes: e.totalBytes, totalBlocks: e.totalBlocks,
                    temporaryBlocks: e.temporaryBlocks, temporaryBytes: e.temporaryBytes, peakBytes: atKind.0, peakBlocks: atKind.1,
                    peakEpoch: kindPeaks[k].epoch, allPeakBytes: atAll.0, allPeakBlocks: atAll.1, allPeakEpoch: allPeak.epoch,
                    lifetimes: e.lifetimeIndex >= 0 ? lifetimes[Int(e.lifetimeIndex)] : nil))
            history.append(HistoryPoint(stackID: stack, kind: kind, bytes: e.bytes, blocks: e.blocks))
        }
        dirty.removeAll(keepingCapacity: true)
        var peaks: [PeakRow] = []
        if allPeak.dirty {
            allPeak.dirty = false
            peaks.append(PeakRow(dimension: .all, epoch: allPeak.epoch, timeNs: allPeak.timeNs, bytes: allPeak.bytes, blocks: allPeak.blocks))
        }
        for k in kindPeaks.indices where kindPeaks[k].dirty {
            kindPeaks[k].dirty = false
            let p = kindPeaks[k]
            peaks.append(PeakRow(dimension: .kind(BlockKind.allCases[k]), epoch: p.epoch, timeNs: p.timeNs, bytes: p.bytes, blocks: p.blocks))
        }
        return (totals, history, peaks)
    }

    /// Outstanding per kind now, for the interval row.
    var kinds: [BlockKind: KindTotal] {
        var out: [BlockKind: KindTotal] = [:]
        for k in BlockKind.allCases where kindTotals[k.slot] != KindTotal() { out[k] = kindTotals[k.slot] }
        return out
    }
}
