/// A map from 64-bit keys to 32-bit values: open addressing with linear probing, no deletion. Written by
/// hand for the collector's hot lookups that number in the millions (stack-tree nodes by (parent,
/// location)), where Swift's Dictionary spends most of its time hashing and resizing and takes three
/// times the memory. Key 0 is reserved as "empty"; callers keep their keys non-zero.
///
/// Key and value share a slot: at millions of nodes every probe is a cache miss, and with keys and
/// values in two arrays a hit paid two (a third of the writer's time on 131k deep stacks).
public struct IntMap {
    private struct Slot {
        var key: UInt64
        var value: UInt32
    }

    private var slots: [Slot]
    public private(set) var count = 0

    public init(capacity: Int = 1024) {
        slots = Self.emptySlots(max(16, capacity * 4 / 3))
    }

    /// Empty slots, on ordinary pages: huge pages (tried) mostly moved the time of the TLB misses into
    /// zeroing 2 MiB pages at every growth, and made the collector's memory at scale less predictable.
    private static func emptySlots(_ n: Int) -> [Slot] { Array(repeating: Slot(key: 0, value: 0), count: n) }

    /// Multiply-shift into any capacity, so the table can grow by half instead of doubling.
    @inline(__always) private static func home(_ key: UInt64, _ capacity: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15).multipliedFullWidth(by: UInt64(capacity)).high)
    }

    /// The value of `key`, or nil. `key` must not be 0.
    @inline(__always) public func get(_ key: UInt64) -> UInt32? {
        slots.withUnsafeBufferPointer { s in
            var i = Self.home(key, s.count)
            while true {
                let k = s[i].key
                if k == key { return s[i].value }
                if k == 0 { return nil }
                i = i + 1 == s.count ? 0 : i + 1
            }
        }
    }

    /// Reads the home slot of each key, so that the cache misses of the `set`s that follow overlap instead
    /// of coming one after another (Swift has no prefetch: independent loads are the portable way to start
    /// them early). The result means nothing; it exists so that the loads are not optimized away.
    @discardableResult @inline(never)
    public func touch(_ keys: UnsafeBufferPointer<UInt64>) -> UInt64 {
        slots.withUnsafeBufferPointer { s in
            var x: UInt64 = 0
            for k in keys { x ^= s[Self.home(k, s.count)].key }
            return x
        }
    }

    /// Sets `key` (non-zero) to `value`, replacing what it had.
    public mutating func set(_ key: UInt64, _ value: UInt32) {
        // At most three quarters full: lookups under a node just created are skipped by the caller, so
        // misses are rare; growth by half keeps the memory near 1.5 slots per entry.
        if (count + 1) * 4 > slots.count * 3 { grow() }
        let added = slots.withUnsafeMutableBufferPointer { s -> Bool in
            var i = Self.home(key, s.count)
            while s[i].key != 0 && s[i].key != key { i = i + 1 == s.count ? 0 : i + 1 }
            let new = s[i].key == 0
            s[i] = Slot(key: key, value: value)
            return new
        }
        if added { count += 1 }
    }

    private mutating func grow() {
        let old = slots
        slots = []
        slots = Self.emptySlots(old.count + old.count / 2)
        slots.withUnsafeMutableBufferPointer { s in
            for slot in old where slot.key != 0 {
                var j = Self.home(slot.key, s.count)
                while s[j].key != 0 { j = j + 1 == s.count ? 0 : j + 1 }
                s[j] = slot
            }
        }
    }

    /// Removes `key` (backward shift: no tombstones). Only undoes recent `set`s, so it is rare.
    public mutating func remove(_ key: UInt64) {
        let removed = slots.withUnsafeMutableBufferPointer { s -> Bool in
            let n = s.count
            var i = Self.home(key, n)
            while s[i].key != key {
                if s[i].key == 0 { return false }
                i = i + 1 == n ? 0 : i + 1
            }
            var hole = i
            var j = i + 1 == n ? 0 : i + 1
            while s[j].key != 0 {
                let h = Self.home(s[j].key, n)
                let dh = hole - h, dj = j - h
                let distHole = dh < 0 ? dh + n : dh
                let distJ = dj < 0 ? dj + n : dj
                if distHole <= distJ {
                    s[hole] = s[j]
                    hole = j
                }
                j = j + 1 == n ? 0 : j + 1
            }
            s[hole].key = 0
            return true
        }
        if removed { count -= 1 }
    }
}
