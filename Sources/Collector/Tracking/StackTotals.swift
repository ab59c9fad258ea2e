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

    /// Entries of one kind, indexed by session stack id (stack ids are dense), in memory this type
    /// manages: as arrays of arrays, every event paid uniqueness checks on two of them.
    private struct EntryTable {
        var base: UnsafeMutablePointer<Entry>?
        var capacity = 0

        @inline(__always) mutating func entry(_ i: Int) -> UnsafeMutablePointer<Entry> {
            if i >= capacity { grow(to: i + 1) }
            // grow() always leaves base set.
            return base.unsafelyUnwrapped + i
        }

        func existing(_ i: Int) -> Entry? { i < capacity ? base.map { $0[i] } : nil }

        private mutating func grow(to n: Int) {
            let cap = max(n, capacity + capacity / 2, 64)
            let bigger = UnsafeMutablePointer<Entry>.allocate(capacity: cap)
            if let base { bigger.moveInitialize(from: base, count: capacity) }
            (bigger + capacity).initialize(repeating: Entry(), count: cap - capacity)
            base?.deallocate()
            base = bigger
            capacity = cap
        }
    }

    /// Freed blocks' lifetimes, `bucketCount` counts then as many byte sums per histogram, flat.
    private var lifetimeCells: [UInt64] = []
    private var lifetimeCount: Int32 = 0
    private var byKind = Array(repeating: EntryTable(), count: BlockKind.allCases.count)
    private var dirty: [(Int, SessionStackID)] = []
    /// Per kind, in storage allocated once (no uniqueness checks per event); the tracker frees it.
    private let kindTotals: UnsafeMutablePointer<KindTotal> = {
        let p = UnsafeMutablePointer<KindTotal>.allocate(capacity: BlockKind.allCases.count)
        p.initialize(repeating: KindTotal(), count: BlockKind.allCases.count)
        return p
    }()
    private var all = KindTotal()
    private let kindPeaks: UnsafeMutablePointer<Peak> = {
        let p = UnsafeMutablePointer<Peak>.allocate(capacity: BlockKind.allCases.count)
        p.initialize(repeating: Peak(), count: BlockKind.allCases.count)
        return p
    }()
    private var allPeak = Peak()

    var outstanding: (bytes: UInt64, blocks: UInt64) { (all.bytes, all.blocks) }

    /// Frees the manually managed storage; the totals must not be used afterwards.
    func deallocate() {
        for t in byKind { t.base?.deallocate() }
        kindTotals.deallocate()
        kindPeaks.deallocate()
    }

    func outstanding(_ kind: BlockKind) -> KindTotal { kindTotals[kind.slot] }

    /// The entry of a stack and kind, after keeping its value at the latest peaks (before its first
    /// change after them), and marked dirty.
    @inline(__always) private mutating func touch(_ stack: SessionStackID, _ k: Int) -> UnsafeMutablePointer<Entry> {
        let e = byKind[k].entry(Int(stack))
        let kp = kindPeaks[k].epoch, ap = allPeak.epoch
        if e.pointee.peakEpoch != kp {
            e.pointee.peakBytes = e.pointee.bytes
            e.pointee.peakBlocks = e.pointee.blocks
            e.pointee.peakEpoch = kp
        }
        if e.pointee.allPeakEpoch != ap {
            e.pointee.allPeakBytes = e.pointee.bytes
            e.pointee.allPeakBlocks = e.pointee.blocks
            e.pointee.allPeakEpoch = ap
        }
        if !e.pointee.dirty {
            e.pointee.dirty = true
            dirty.append((k, stack))
        }
        return e
    }

    /// Adds an allocation (or a block live again after a failed realloc) at `time`.
    mutating func add(stack: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64, newAllocation: Bool, time: UInt64) {
        let k = kind.slot
        let e = touch(stack, k)
        e.pointee.bytes &+= bytes
        e.pointee.blocks &+= blocks
        if newAllocation {
            e.pointee.totalBytes &+= bytes
            e.pointee.totalBlocks &+= blocks
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

    /// Takes bytes and blocks off a stack (freed, unmapped, or replaced by a missed free); when `freed`
    /// gives the lifetime of what went, it also counts that (`freedBlocks` of them, default `blocks`)
    /// and whether it was temporary.
    mutating func remove(
        stack: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64, freed lifetimeNs: UInt64? = nil, freedBlocks: UInt64? = nil,
        temporary: Bool = false
    ) {
        let k = kind.slot
        let e = touch(stack, k)
        // Clamp rather than wrap: a source that lies about sizes must not produce absurd totals.
        let took = (min(bytes, e.pointee.bytes), min(blocks, e.pointee.blocks))
        e.pointee.bytes -= took.0
        e.pointee.blocks -= took.1
        kindTotals[k].bytes -= min(took.0, kindTotals[k].bytes)
        kindTotals[k].blocks -= min(took.1, kindTotals[k].blocks)
        all.bytes -= min(took.0, all.bytes)
        all.blocks -= min(took.1, all.blocks)
        guard let lifetimeNs else { return }
        if temporary {
            e.pointee.temporaryBlocks &+= freedBlocks ?? blocks
            e.pointee.temporaryBytes &+= bytes
        }
        if e.pointee.lifetimeIndex < 0 {
            e.pointee.lifetimeIndex = lifetimeCount
            lifetimeCount += 1
            lifetimeCells.append(contentsOf: repeatElement(0, count: 2 * LifetimeHistogram.bucketCount))
        }
        let cell = Int(e.pointee.lifetimeIndex) * 2 * LifetimeHistogram.bucketCount + LifetimeHistogram.bucket(lifetimeNs: lifetimeNs)
        let n = freedBlocks ?? blocks
        lifetimeCells.withUnsafeMutableBufferPointer { c in
            c[cell] &+= n
            c[cell + LifetimeHistogram.bucketCount] &+= bytes
        }
    }

    private func lifetimes(_ index: Int32) -> LifetimeHistogram? {
        guard index >= 0 else { return nil }
        var h = LifetimeHistogram()
        let n = LifetimeHistogram.bucketCount
        let at = Int(index) * 2 * n
        for b in 0..<n {
            h.counts[b] = lifetimeCells[at + b]
            h.bytes[b] = lifetimeCells[at + n + b]
        }
        return h
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
            let p = byKind[k].entry(Int(stack))
            p.pointee.dirty = false
            let e = p.pointee
            let kind = BlockKind.allCases[k]
            // An entry copied before the latest peak holds its value at it as its current value.
            let atKind = e.peakEpoch == kindPeaks[k].epoch ? (e.peakBytes, e.peakBlocks) : (e.bytes, e.blocks)
            let atAll = e.allPeakEpoch == allPeak.epoch ? (e.allPeakBytes, e.allPeakBlocks) : (e.bytes, e.blocks)
            totals.append(
                TotalRow(
                    stackID: stack, kind: kind, bytes: e.bytes, blocks: e.blocks, totalBytes: e.totalBytes, totalBlocks: e.totalBlocks,
                    temporaryBlocks: e.temporaryBlocks, temporaryBytes: e.temporaryBytes, peakBytes: atKind.0, peakBlocks: atKind.1,
                    peakEpoch: kindPeaks[k].epoch, allPeakBytes: atAll.0, allPeakBlocks: atAll.1, allPeakEpoch: allPeak.epoch,
                    lifetimes: lifetimes(e.lifetimeIndex)))
            history.append(HistoryPoint(stackID: stack, kind: kind, bytes: e.bytes, blocks: e.blocks))
        }
        dirty.removeAll(keepingCapacity: true)
        var peaks: [PeakRow] = []
        if allPeak.dirty {
            allPeak.dirty = false
            peaks.append(PeakRow(dimension: .all, epoch: allPeak.epoch, timeNs: allPeak.timeNs, bytes: allPeak.bytes, blocks: allPeak.blocks))
        }
        for k in 0..<BlockKind.allCases.count where kindPeaks[k].dirty {
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
