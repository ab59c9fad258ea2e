import SessionStore

/// What the collector keeps per live heap or kernel block.
struct Block {
    var size: UInt64
    var time: UInt64
    var stack: SessionStackID
    var tid: UInt32
    var pid: Int32
    /// Index into the tracker's interned comm strings; 0 = none.
    var comm: UInt32
    var function: AllocFunction
    /// The block has a row in the session's `live` table.
    var persisted: Bool
}

/// Live blocks keyed by address: open addressing with linear probing and backward-shift deletion, in
/// memory it manages itself. Written by hand because it sits on the collector's per-event path, where
/// Swift's Dictionary costs several times more per insert/remove than this table at millions of events
/// per second.
final class AddressTable {
    private var keys: UnsafeMutablePointer<UInt64>
    private var values: UnsafeMutablePointer<Block>
    private var mask: Int
    private(set) var count = 0
    /// Address 0 cannot be an empty-slot marker and a key at once, so it lives aside.
    private var zeroValue: Block?

    init(capacity: Int = 1 << 16) {
        var cap = 16
        while cap < capacity { cap <<= 1 }
        keys = .allocate(capacity: cap)
        keys.initialize(repeating: 0, count: cap)
        values = .allocate(capacity: cap)
        mask = cap - 1
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    var capacity: Int { mask + 1 }

    @inline(__always) private func home(_ key: UInt64) -> Int {
        // Fibonacci hashing: allocator addresses share low bits, so mix before masking.
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    func find(_ key: UInt64) -> Block? {
        if key == 0 { return zeroValue }
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key { return values[i] }
            if k == 0 { return nil }
            i = (i + 1) & mask
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
        if (count + 1) * 4 > capacity * 3 { grow() }
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key {
                let old = values[i]
                values[i] = value
                return old
            }
            if k == 0 {
                keys[i] = key
                (values + i).initialize(to: value)
                count += 1
                return nil
            }
            i = (i + 1) & mask
        }
    }

    /// Sets `persisted` on a live block.
    func markPersisted(_ key: UInt64) {
        if key == 0 { zeroValue?.persisted = true; return }
        var i = home(key)
        while keys[i] != 0 {
            if keys[i] == key { values[i].persisted = true; return }
            i = (i + 1) & mask
        }
    }

    func remove(_ key: UInt64) -> Block? {
        if key == 0 {
            let old = zeroValue
            if old != nil { count -= 1 }
            zeroValue = nil
            return old
        }
        var i = home(key)
        while true {
            let k = keys[i]
            if k == 0 { return nil }
            if k == key { break }
            i = (i + 1) & mask
        }
        let removed = values[i]
        count -= 1
        // Backward shift: pull later entries of the probe run into the hole so lookups never need tombstones.
        var hole = i
        var j = (i + 1) & mask
        while keys[j] != 0 {
            let h = home(keys[j])
            let distHole = (hole - h) & mask
            let distJ = (j - h) & mask
            if distHole <= distJ {
                keys[hole] = keys[j]
                values[hole] = values[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        keys[hole] = 0
        return removed
    }

    func forEach(_ body: (UInt64, Block) -> Void) {
        if let z = zeroValue { body(0, z) }
        for i in 0..<capacity where keys[i] != 0 { body(keys[i], values[i]) }
    }

    private func grow() {
        let oldKeys = keys, oldValues = values, oldCap = capacity
        let cap = oldCap * 2
        keys = .allocate(capacity: cap)
        keys.initialize(repeating: 0, count: cap)
        values = .allocate(capacity: cap)
        mask = cap - 1
        for i in 0..<oldCap where oldKeys[i] != 0 {
            var j = home(oldKeys[i])
            while keys[j] != 0 { j = (j + 1) & mask }
            keys[j] = oldKeys[i]
            (values + j).initialize(to: oldValues[i])
        }
        oldKeys.deallocate()
        oldValues.deallocate()
    }
}
