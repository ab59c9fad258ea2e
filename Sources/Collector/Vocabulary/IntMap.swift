/// A map from 64-bit keys to 32-bit values: open addressing with linear probing, no deletion. Written by
/// hand for the collector's hot lookups that number in the millions (stack-tree nodes by (parent,
/// location)), where Swift's Dictionary spends most of its time hashing and resizing and takes three
/// times the memory. Key 0 is reserved as "empty"; callers keep their keys non-zero.
public struct IntMap {
    private var keys: [UInt64]
    private var values: [UInt32]
    private var mask: Int
    public private(set) var count = 0

    public init(capacity: Int = 1024) {
        var cap = 16
        while cap < capacity * 2 { cap <<= 1 }
        keys = Array(repeating: 0, count: cap)
        values = Array(repeating: 0, count: cap)
        mask = cap - 1
    }

    @inline(__always) private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// The value of `key`, or nil. `key` must not be 0.
    @inline(__always) public func get(_ key: UInt64) -> UInt32? {
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key { return values[i] }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// Sets `key` (non-zero) to `value`, replacing what it had.
    public mutating func set(_ key: UInt64, _ value: UInt32) {
        // At most half full: most lookups are misses, and a miss probes to the next empty slot.
        if (count + 1) * 2 > mask + 1 { grow() }
        var i = home(key)
        while keys[i] != 0 && keys[i] != key { i = (i + 1) & mask }
        if keys[i] == 0 { count += 1 }
        keys[i] = key
        values[i] = value
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = Array(repeating: 0, count: oldKeys.count * 2)
        values = Array(repeating: 0, count: oldKeys.count * 2)
        mask = keys.count - 1
        for (i, k) in oldKeys.enumerated() where k != 0 {
            var j = home(k)
            while keys[j] != 0 { j = (j + 1) & mask }
            keys[j] = k
            values[j] = oldValues[i]
        }
    }
}
