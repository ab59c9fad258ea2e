import Glibc
import Vocabulary

/// What the collector keeps per live heap or kernel block: 16 bytes, so ten million live blocks fit in
/// a few hundred megabytes. The size has 48 bits, the allocator function 5, the allocation time is kept
/// in ticks of 2^20 ns (about a millisecond; the shim's clock is coarser still) relative to the
/// tracker's epoch. The task and process a block belongs to are its stack's (see `StackDefinition.task`).
struct Block: Equatable {
    private var meta: UInt64
    var stack: SessionStackID
    var tick: UInt32

    private static let sizeMask: UInt64 = (1 << 48) - 1
    private static let persistedBit: UInt64 = 1 << 53
    private static let markedBit: UInt64 = 1 << 54

    init(size: UInt64, tick: UInt32, stack: SessionStackID, function: AllocFunction) {
        meta = min(size, Self.sizeMask) | UInt64(function.code) << 48
        self.stack = stack
        self.tick = tick
    }

    /// Sizes of 256 TiB and more are clamped: no allocator returns such a block.
    var size: UInt64 { meta & Self.sizeMask }
    var function: AllocFunction { AllocFunction(code: UInt8(truncatingIfNeeded: (meta >> 48) & 0x1f)) }
    /// The block is in the session's live checkpoint.
    var persisted: Bool {
        get { meta & Self.persistedBit != 0 }
        set { if newValue { meta |= Self.persistedBit } else { meta &= ~Self.persistedBit } }
    }
    /// Known live to the resync pass under way (see `AddressTable.marking`).
    var marked: Bool {
        get { meta & Self.markedBit != 0 }
        set { if newValue { meta |= Self.markedBit } else { meta &= ~Self.markedBit } }
    }
}

/// Live blocks keyed by address: open addressing with linear probing and backward-shift deletion, in
/// memory it maps itself. Written by hand because it sits on the collector's per-event path, where
/// Swift's Dictionary costs several times more per insert/remove at millions of events per second and
/// several times more memory per entry.
///
/// - 64 shards, chosen by the top bits of the key's hash, each growing on its own, by half again once past
///   `sparseShardSlots`: a single table that doubles holds old and new arrays at once and spends half its
///   slots empty, which is what would break the collector's per-block memory budget at ten million
///   blocks. Small shards stay sparse and double (see `full`). Slots map by a
///   multiply-shift ("fastrange"), so capacities need not be powers of two.
/// - Key and block side by side in a slot: one cache miss per random insert or lookup, not two.
/// - Each shard keeps a bitmap of the slot pages holding blocks not yet checkpointed, so a cut scans only
///   those (`collectNew`) instead of keeping a list of every new block.
/// - A struct over manually managed memory, not a class: a table reference fetched per event costs an
///   atomic retain and release around every insert. The owner calls `deallocate()` once.
struct AddressTable {
    private struct Slot {
        var key: UInt64
        var value: Block
    }

    private struct Shard {
        var slots: UnsafeMutablePointer<Slot>
        var capacity: Int
        var count: Int
        var mapped: Int
        /// Small shards come from calloc, big ones from mmap.
        var fromHeap: Bool
        /// One bit per `pageSlots` slots: the page may hold blocks not yet checkpointed.
        var dirty: UnsafeMutablePointer<UInt64>
        var dirtyWords: Int
    }

    private struct Header {
        var count = 0
        /// Address 0 cannot be an empty-slot marker and a key at once, so it lives aside.
        var zeroValue: Block?
        var marking = false
    }

    private static let shardBits: UInt64 = 6
    static let shardCount = 1 << Int(shardBits)
    private static let pageShift = 10
    private let shards: UnsafeMutablePointer<Shard>
    private let header: UnsafeMutablePointer<Header>

    init(shardCapacity: Int = 16) {
        shards = .allocate(capacity: Self.shardCount)
        for i in 0..<Self.shardCount { (shards + i).initialize(to: Self.makeShard(capacity: max(shardCapacity, 16))) }
        header = .allocate(capacity: 1)
        header.initialize(to: Header())
    }

    /// Frees the table's memory; the table must not be used afterwards.
    func deallocate() {
        for i in 0..<Self.shardCount { Self.release(shards[i]) }
        shards.deallocate()
        header.deinitialize(count: 1)
        header.deallocate()
    }

    var count: Int { header.pointee.count }

    /// While set, every block inserted is marked, so that a resync read slice by slice beside the event
    /// stream can tell the blocks it or the stream vouched for from those held before it began
    /// (`takeUnmarked`).
    var marking: Bool {
        get { header.pointee.marking }
        nonmutating set { header.pointee.marking = newValue }
    }

    /// Bytes of memory the table holds.
    var memoryBytes: Int { (0..<Self.shardCount).reduce(0) { $0 + shards[$1].mapped } }

    /// Where each mmapped shard starts, and how long it is (for the tests of its huge-page alignment).
    var mappedShards: [(start: UInt, length: Int)] {
        (0..<Self.shardCount).compactMap { shards[$0].fromHeap ? nil : (UInt(bitPattern: shards[$0].slots), shards[$0].mapped) }
    }

    /// Shards below this come from calloc: a new space starts 4 tables of 64 small shards, and a page
    /// mapped and unmapped for each made a fork-heavy program (and the ring fuzz target) spend its
    /// time in mmap/munmap.
    private static let heapShardLimit = 64 << 10

    private static func makeShard(capacity: Int) -> Shard {
        let bytes = capacity * MemoryLayout<Slot>.stride
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let fromHeap = bytes < heapShardLimit
        let mapped = fromHeap ? bytes : (bytes + page - 1) / page * page
        let memory = fromHeap ? calloc(1, mapped) : mapAligned(mapped)
        guard let raw = memory, raw != MAP_FAILED else {
            // Out of memory or address space: nothing sensible can go on tracking.
            fatalError("leakcollect: cannot map \(mapped) bytes for the live table")
        }
        // Huge pages for big shards: every event touches a random slot, and with 4 KiB pages nearly
        // every one of them is also a TLB miss.
        if mapped >= hugePage { madvise(raw, mapped, MADV_HUGEPAGE) }
        let words = ((capacity >> pageShift) + 1 + 63) / 64
        let dirty = UnsafeMutablePointer<UInt64>.allocate(capacity: words)
        dirty.initialize(repeating: 0, count: words)
        // Anonymous and calloc'd memory is zero: every key starts empty.
        return Shard(
            slots: raw.bindMemory(to: Slot.self, capacity: capacity), capacity: capacity, count: 0, mapped: mapped, fromHeap: fromHeap,
            dirty: dirty, dirtyWords: words)
    }

    private static let hugePage = 2 << 20

    /// An anonymous mapping of `length` bytes that starts on a huge-page boundary when it spans one: mmap
    /// alone places it anywhere on a 4 KiB boundary, and then only the huge pages that happen to fit
    /// inside it are huge (about half of a 4 MiB shard), the rest faulted in and TLB-missed 4 KiB at a
    /// time. The end is not rounded up: a partly used huge page there would cost up to 2 MiB a shard.
    private static func mapAligned(_ length: Int) -> UnsafeMutableRawPointer? {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS
        guard length >= hugePage else { return mmap(nil, length, PROT_READ | PROT_WRITE, flags, -1, 0) }
        guard let wide = mmap(nil, length + hugePage, PROT_READ | PROT_WRITE, flags, -1, 0), wide != MAP_FAILED else {
            return MAP_FAILED
        }
        let start = (Int(bitPattern: wide) + hugePage - 1) & ~(hugePage - 1)
        let head = start - Int(bitPattern: wide)
        if head > 0 { munmap(wide, head) }
        munmap(wide + head + length, hugePage - head)
        return wide + head
    }

    private static func release(_ s: Shard) {
        if s.fromHeap { free(s.slots) } else { munmap(UnsafeMutableRawPointer(s.slots), s.mapped) }
        s.dirty.deallocate()
    }

    @inline(__always) private static func hash(_ key: UInt64) -> UInt64 { key &* 0x9E37_79B9_7F4A_7C15 }

    @inline(__always) private static func shardIndex(_ h: UInt64) -> Int { Int(truncatingIfNeeded: h >> (64 - shardBits)) }

    /// Home slot from the hash bits below the shard bits, scaled to the capacity by a multiply-shift
    /// (Fibonacci hashing: allocator addresses share low bits, so only the product's high bits are mixed).
    @inline(__always) private static func home(_ h: UInt64, _ capacity: Int) -> Int {
        Int(truncatingIfNeeded: (h << shardBits).multipliedFullWidth(by: UInt64(capacity)).high)
    }

    @inline(__always) private static func next(_ i: Int, _ capacity: Int) -> Int { i + 1 == capacity ? 0 : i + 1 }

    @inline(__always) private static func markDirty(_ s: Shard, _ slot: Int) {
        let page = slot >> pageShift
        s.dirty[page >> 6] |= 1 << UInt64(page & 63)
    }

    /// The shard and slot holding `key` (not 0), or nil: the probe that find, findMarking and markNew share.
    @inline(__always) private func locate(_ key: UInt64) -> (shard: Shard, slot: Int)? {
        let h = Self.hash(key)
        let s = shards[Self.shardIndex(h)]
        var i = Self.home(h, s.capacity)
        while true {
            let k = s.slots[i].key
            if k == key { return (s, i) }
            if k == 0 { return nil }
            i = Self.next(i, s.capacity)
        }
    }

    func find(_ key: UInt64) -> Block? {
        if key == 0 { return header.pointee.zeroValue }
        guard let (s, i) = locate(key) else { return nil }
        return s.slots[i].value
    }

    /// The slot a look-up of `key` reads first (see `EventSink.lookupHint`).
    @inline(__always) func slotHint(_ key: UInt64) -> UnsafeRawPointer {
        let h = Self.hash(key)
        let s = shards[Self.shardIndex(h)]
        return UnsafeRawPointer(s.slots + Self.home(h, s.capacity))
    }

    /// Inserts or replaces; returns the block it replaced.
    @discardableResult
    func insert(_ key: UInt64, _ value: Block) -> Block? {
        var value = value
        if header.pointee.marking { value.marked = true }
        if key == 0 {
            let old = header.pointee.zeroValue
            header.pointee.zeroValue = value
            if old == nil { header.pointee.count += 1 }
            return old
        }
        let h = Self.hash(key)
        let si = Self.shardIndex(h)
        if Self.full(shards[si].count + 1, shards[si].capacity) { grow(si) }
        let s = shards[si]
        var i = Self.home(h, s.capacity)
        while true {
            let k = s.slots[i].key
            if k == key {
                let old = s.slots[i].value
                s.slots[i].value = value
                if !value.persisted { Self.markDirty(s, i) }
                return old
            }
            if k == 0 {
                s.slots[i] = Slot(key: key, value: value)
                if !value.persisted { Self.markDirty(s, i) }
                shards[si].count += 1
                header.pointee.count += 1
                return nil
            }
            i = Self.next(i, s.capacity)
        }
    }

    func remove(_ key: UInt64) -> Block? {
        if key == 0 {
            let old = header.pointee.zeroValue
            if old != nil { header.pointee.count -= 1 }
            header.pointee.zeroValue = nil
            return old
        }
        let h = Self.hash(key)
        let si = Self.shardIndex(h)
        let s = shards[si]
        var i = Self.home(h, s.capacity)
        while true {
            let k = s.slots[i].key
            if k == 0 { return nil }
            if k == key { break }
            i = Self.next(i, s.capacity)
        }
        let removed = s.slots[i].value
        shards[si].count -= 1
        header.pointee.count -= 1
        // Backward shift: pull later entries of the probe run into the hole so lookups never need tombstones.
        var hole = i
        var j = Self.next(i, s.capacity)
        while s.slots[j].key != 0 {
            let home = Self.home(Self.hash(s.slots[j].key), s.capacity)
            // Distances along the probe run, wrapping at the end without a division.
            let dh = hole - home, dj = j - home
            let distHole = dh < 0 ? dh + s.capacity : dh
            let distJ = dj < 0 ? dj + s.capacity : dj
            if distHole <= distJ {
                s.slots[hole] = s.slots[j]
                // A block not yet checkpointed that moves must be found where it lands.
                if !s.slots[hole].value.persisted { Self.markDirty(s, hole) }
                hole = j
            }
            j = Self.next(j, s.capacity)
        }
        s.slots[hole].key = 0
        return removed
    }

    /// Calls `body` with every block not yet checkpointed and marks it checkpointed, shard by shard
    /// from `shard`, until `budget` slots were scanned; returns the next shard to scan (`shardCount` when done).
    func collectNew(from shard: Int, budget: Int, _ body: (UInt64, Block) -> Void) -> Int {
        var si = shard
        var scanned = 0
        if si == 0, var z = header.pointee.zeroValue, !z.persisted {
            z.persisted = true
            header.pointee.zeroValue = z
            body(0, z)
        }
        while si < Self.shardCount && scanned < budget {
            let s = shards[si]
            for w in 0..<s.dirtyWords where s.dirty[w] != 0 {
                var bits = s.dirty[w]
                s.dirty[w] = 0
                while bits != 0 {
                    let page = w * 64 + bits.trailingZeroBitCount
                    bits &= bits - 1
                    let lo = page << Self.pageShift
                    let hi = min(lo + (1 << Self.pageShift), s.capacity)
                    guard lo < hi else { continue }
                    for i in lo..<hi where s.slots[i].key != 0 && !s.slots[i].value.persisted {
                        s.slots[i].value.persisted = true
                        body(s.slots[i].key, s.slots[i].value)
                    }
                    scanned += hi - lo
                }
            }
            si += 1
        }
        return si
    }

    /// The block at `key`, marked from now on (see `marking`).
    func findMarking(_ key: UInt64) -> Block? {
        if key == 0 {
            header.pointee.zeroValue?.marked = true
            return header.pointee.zeroValue
        }
        guard let (s, i) = locate(key) else { return nil }
        s.slots[i].value.marked = true
        return s.slots[i].value
    }

    /// Clears every mark and returns the addresses of the blocks that had none, in one pass.
    func takeUnmarked() -> [UInt64] {
        var unmarked: [UInt64] = []
        if let z = header.pointee.zeroValue {
            if z.marked { header.pointee.zeroValue?.marked = false } else { unmarked.append(0) }
        }
        for si in 0..<Self.shardCount {
            let s = shards[si]
            for i in 0..<s.capacity where s.slots[i].key != 0 {
                if s.slots[i].value.marked { s.slots[i].value.marked = false } else { unmarked.append(s.slots[i].key) }
            }
        }
        return unmarked
    }

    /// Marks a live block not checkpointed again (it is written anew at the next cut).
    func markNew(_ key: UInt64) {
        if key == 0 {
            header.pointee.zeroValue?.persisted = false
            return
        }
        guard let (s, i) = locate(key) else { return }
        s.slots[i].value.persisted = false
        Self.markDirty(s, i)
    }

    func forEach(_ body: (UInt64, Block) -> Void) {
        if let z = header.pointee.zeroValue { body(0, z) }
        for si in 0..<Self.shardCount {
            let s = shards[si]
            for i in 0..<s.capacity where s.slots[i].key != 0 { body(s.slots[i].key, s.slots[i].value) }
        }
    }

    /// Removes every block.
    func removeAll() {
        for i in 0..<Self.shardCount {
            Self.release(shards[i])
            shards[i] = Self.makeShard(capacity: 16)
        }
        header.pointee = Header()
    }

    /// Below this many slots a shard is kept at most half full and doubles. Linear probing at 7/8 load
    /// has long probe runs, and a removal's backward shift walks to the end of its run: in a program
    /// with a few thousand live blocks and millions of short-lived ones, that walk was most of the
    /// table's cost per event. 64 shards of 4,096 slots are 8 MiB, so the memory budget per block of
    /// big tables is untouched.
    private static let sparseShardSlots = 4096

    @inline(__always) private static func full(_ count: Int, _ capacity: Int) -> Bool {
        capacity < sparseShardSlots ? count * 2 > capacity : count * 8 > capacity * 7
    }

    /// Twice as many slots while sparse, then half again as many: past that, memory stays within 1.15 to
    /// 1.7 slots per block. The first dense step spreads the shards over one step (×1.5 to ×2.25 by shard
    /// index), so that later they fill and grow one at a time: uniform hashing made all 64 reach 7/8 in the
    /// same poll, and at ten million blocks copying them all stalled the drain for 0.7 s (writers dropped).
    private static func grown(_ capacity: Int, shard si: Int) -> Int {
        if capacity < sparseShardSlots { return capacity * 2 }
        let next = capacity + capacity / 2
        return capacity < sparseShardSlots * 3 / 2 ? next + next * si / (2 * shardCount) : next
    }

    private func grow(_ si: Int) {
        let old = shards[si]
        var s = Self.makeShard(capacity: Self.grown(old.capacity, shard: si))
        for i in 0..<old.capacity where old.slots[i].key != 0 {
            let key = old.slots[i].key
            var j = Self.home(Self.hash(key), s.capacity)
            while s.slots[j].key != 0 { j = Self.next(j, s.capacity) }
            s.slots[j] = old.slots[i]
            if !old.slots[i].value.persisted { Self.markDirty(s, j) }
        }
        s.count = old.count
        Self.release(old)
        shards[si] = s
    }
}
