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
}

/// Live blocks keyed by address: open addressing with linear probing and backward-shift deletion, in
/// memory it maps itself. Written by hand because it sits on the collector's per-event path, where
/// Swift's Dictionary costs several times more per insert/remove at millions of events per second and
/// several times more memory per entry.
///
/// The table is 64 shards, chosen by the top bits of the key's hash, each growing on its own: a single
/// table that doubles holds old and new arrays at once (about 3x its memory for a moment), which is
/// what would break the collector's per-block memory budget at ten million blocks. Storage comes from
/// mmap so that a shard's old arrays go back to the system when it grows.
final class AddressTable {
    private struct Shard {
        var keys: UnsafeMutablePointer<UInt64>
        var values: UnsafeMutablePointer<Block>
        var mask: Int
        var shift: UInt64
        var count: Int
        var mapped: Int
    }

    private static let shardBits: UInt64 = 6
    private var shards: [Shard]
    private(set) var count = 0
    /// Address 0 cannot be an empty-slot marker and a key at once, so it lives aside.
    private var zeroValue: Block?

    init(shardCapacity: Int = 16) {
        var cap = 16
        while cap < shardCapacity { cap <<= 1 }
        shards = (0..<(1 << Self.shardBits)).map { _ in Self.makeShard(capacity: cap) }
    }

    deinit {
        for s in shards { Self.release(s) }
    }

    /// Bytes of memory the table holds.
    var memoryBytes: Int { shards.reduce(0) { $0 + $1.mapped } }

    private static func makeShard(capacity: Int) -> Shard {
        let keyBytes = capacity * MemoryLayout<UInt64>.stride
        let bytes = keyBytes + capacity * MemoryLayout<Block>.stride
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mapped = (bytes + page - 1) / page * page
        guard let raw = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
            // Out of address space: nothing sensible can go on tracking.
            fatalError("leakcollect: cannot map \(mapped) bytes for the live table")
        }
        // Anonymous memory is zero: every key starts empty.
        let keys = raw.bindMemory(to: UInt64.self, capacity: capacity)
        let values = (raw + keyBytes).bindMemory(to: Block.self, capacity: capacity)
        return Shard(
            keys: keys, values: values, mask: capacity - 1, shift: 64 - UInt64(capacity.trailingZeroBitCount), count: 0, mapped: mapped)
    }

    private static func release(_ s: Shard) { munmap(UnsafeMutableRawPointer(s.keys), s.mapped) }

    @inline(__always) private static func hash(_ key: UInt64) -> UInt64 { key &* 0x9E37_79B9_7F4A_7C15 }

    @inline(__always) private static func shardIndex(_ h: UInt64) -> Int { Int(truncatingIfNeeded: h >> (64 - shardBits)) }

    /// Home slot from the hash bits just below the shard bits (Fibonacci hashing: allocator addresses
    /// share low bits, so only the high bits of the product are well mixed).
    @inline(__always) private static func home(_ h: UInt64, _ s: Shard) -> Int {
        Int(truncatingIfNeeded: (h << shardBits) >> s.shift) & s.mask
    }

    func find(_ key: UInt64) -> Block? {
        if key == 0 { return zeroValue }
        let h = Self.hash(key)
        let s = shards[Self.shardIndex(h)]
        var i = Self.home(h, s)
        while true {
            let k = s.keys[i]
            if k == key { return s.values[i] }
            if k == 0 { return nil }
            i = (i + 1) & s.mask
        }
    }

    /// Inserts or replaces; returns the block it replaced.
    @discardableResult
    func insert(_ key: UInt64, _ value: Block) -> Block? {
        if key == 0 {
            let old = zeroValue
            zeroValue = value
            if old == nil { count += 1 }
            return old
        }
        let h = Self.hash(key)
        let si = Self.shardIndex(h)
        if (shards[si].count + 1) * 8 > (shards[si].mask + 1) * 7 { grow(si) }
        let s = shards[si]
        var i = Self.home(h, s)
        while true {
            let k = s.keys[i]
            if k == key {
                let old = s.values[i]
                s.values[i] = value
                return old
            }
            if k == 0 {
                s.keys[i] = key
                s.values[i] = value
                shards[si].count += 1
                count += 1
                return nil
            }
            i = (i + 1) & s.mask
        }
    }

    /// Changes a live block in place; false if the key is not live.
    @discardableResult
    func update(_ key: UInt64, _ body: (inout Block) -> Void) -> Bool {
        if key == 0 {
            guard var z = zeroValue else { return false }
            body(&z)
            zeroValue = z
            return true
        }
        let h = Self.hash(key)
        let s = shards[Self.shardIndex(h)]
        var i = Self.home(h, s)
        while s.keys[i] != 0 {
            if s.keys[i] == key {
                body(&s.values[i])
                return true
            }
            i = (i + 1) & s.mask
        }
        return false
    }

    func remove(_ key: UInt64) -> Block? {
        if key == 0 {
            let old = zeroValue
            if old != nil { count -= 1 }
            zeroValue = nil
            return old
        }
        let h = Self.hash(key)
        let si = Self.shardIndex(h)
        let s = shards[si]
        var i = Self.home(h, s)
        while true {
            let k = s.keys[i]
            if k == 0 { return nil }
            if k == key { break }
            i = (i + 1) & s.mask
        }
        let removed = s.values[i]
        shards[si].count -= 1
        count -= 1
        // Backward shift: pull later entries of the probe run into the hole so lookups never need tombstones.
        var hole = i
        var j = (i + 1) & s.mask
        while s.keys[j] != 0 {
            let home = Self.home(Self.hash(s.keys[j]), s)
            if (hole - home) & s.mask <= (j - home) & s.mask {
                s.keys[hole] = s.keys[j]
                s.values[hole] = s.values[j]
                hole = j
            }
            j = (j + 1) & s.mask
        }
        s.keys[hole] = 0
        return removed
    }

    func forEach(_ body: (UInt64, Block) -> Void) {
        if let z = zeroValue { body(0, z) }
        for s in shards {
            for i in 0...s.mask where s.keys[i] != 0 { body(s.keys[i], s.values[i]) }
        }
    }

    /// Removes every block.
    func removeAll() {
        for (i, s) in shards.enumerated() {
            Self.release(s)
            shards[i] = Self.makeShard(capacity: 16)
        }
        zeroValue = nil
        count = 0
    }

    private func grow(_ si: Int) {
        let old = shards[si]
        var s = Self.makeShard(capacity: (old.mask + 1) * 2)
        for i in 0...old.mask where old.keys[i] != 0 {
            let key = old.keys[i]
            var j = Self.home(Self.hash(key), s)
            while s.keys[j] != 0 { j = (j + 1) & s.mask }
            s.keys[j] = key
            s.values[j] = old.values[i]
        }
        s.count = old.count
        Self.release(old)
        shards[si] = s
    }
}
