/// A map from 64-bit keys to 32-bit values: open addressing with linear probing, no deletion. Written by
/// hand for the collector's hot lookups that number in the millions (stack-tree nodes by (parent,
/// location)), where Swift's Dictionary spends most of its time hashing and resizing and takes three
/// times the memory. Key 0 is reserved as "empty"; callers keep their keys non-zero.
public struct IntMap {
    private var keys: [UInt64]
    private var values: [UInt32]
    public private(set) var count = 0

    public init(capacity: Int = 1024) {
        let cap = max(16, capacity * 4 / 3)
        keys = Array(repeating: 0, count: cap)
        values = Array(repeating: 0, count: cap)
    }

    /// Multiply-shift into any capacity, so the table can grow by half instead of doubling.
    @inline(__always) private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15).multipliedFullWidth(by: UInt64(keys.count)).high)
    }

    /// The value of `key`, or nil. `key` must not be 0.
    @inline(__always) public func get(_ key: UInt64) -> UInt32? {
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key { return values[i] }
            if k == 0 { return nil }
            i = i + 1 == keys.count ? 0 : i + 1
        }
    }

    /// Sets `key` (non-zero) to `value`, replacing what it had.
    public mutating func set(_ key: UInt64, _ value: UInt32) {
        // At most three quarters full: lookups under a node just created are skipped by the caller, so
        // misses are rare; growth by half keeps the memory near 1.5 slots per entry.
        if (count + 1) * 4 > keys.count * 3 { grow() }
        var i = home(key)
        while keys[i] != 0 && keys[i] != key { i = i + 1 == keys.count ? 0 : i + 1 }
        if keys[i] == 0 { count += 1 }
        keys[i] = key
        values[i] = value
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = []
        values = []
        keys = Array(repeating: 0, count: oldKeys.count + oldKeys.count / 2)
        values = Array(repeating: 0, count: keys.count)
        for (i, k) in oldKeys.enumerated() where k != 0 {
            var j = home(k)
            while keys[j] != 0 { j = j + 1 == keys.count ? 0 : j + 1 }
            keys[j] = k
            values[j] = oldValues[i]
        }
    }

    /// Removes `key` (backward shift: no tombstones). Only undoes recent `set`s, so it is rare.
    public mutating func remove(_ key: UInt64) {
        var i = home(key)
        while keys[i] != key {
            if keys[i] == 0 { return }
            i = i + 1 == keys.count ? 0 : i + 1
        }
        count -= 1
        var hole = i
        var j = i + 1 == keys.count ? 0 : i + 1
        while keys[j] != 0 {
            let h = home(keys[j])
            let dh = hole - h, dj = j - h
            let distHole = dh < 0 ? dh + keys.count : dh
            let distJ = dj < 0 ? dj + keys.count : dj
            if distHole <= distJ {
                keys[hole] = keys[j]
                values[hole] = values[j]
                hole = j
            }
            j = j + 1 == keys.count ? 0 : j + 1
        }
        keys[hole] = 0
    }
}
