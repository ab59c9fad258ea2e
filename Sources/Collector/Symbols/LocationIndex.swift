import Vocabulary

/// The symbolizer's location id of each distinct (module, space, address): open addressing with linear
/// probing, no deletion. Written by hand because every frame of every new stack is looked up here (tens of
/// millions at scale), and Swift's Dictionary spent that time in SipHash over a three-field key; a
/// multiply-shift of the address, with the module and space folded in, spreads these keys well enough.
struct LocationIndex {
    /// Kernel addresses are keyed under module -1, user addresses outside every module under 0 and
    /// their space (JIT code at one address differs between processes). Hashable only for tests that
    /// check the index against a Dictionary; the index itself never hashes through it.
    struct Key: Hashable {
        var module: Int64
        var space: SpaceID
        var address: UInt64
    }

    private struct Slot {
        var key: Key
        var id: Int64  // 0: empty; ids start at 1
    }

    private var slots: [Slot]
    private(set) var count = 0

    init(capacity: Int = 1024) {
        slots = Self.emptySlots(Self.power(atLeast: max(16, capacity * 4 / 3)))
    }

    private static func power(atLeast n: Int) -> Int { 1 << (Int.bitWidth - (n - 1).leadingZeroBitCount) }
    private static func emptySlots(_ n: Int) -> [Slot] {
        Array(repeating: Slot(key: Key(module: 0, space: 0, address: 0), id: 0), count: n)
    }

    @inline(__always) private static func home(_ k: Key, _ mask: Int) -> Int {
        let x = (k.address ^ UInt64(bitPattern: k.module) &* 0xFF51_AFD7_ED55_8CCD ^ UInt64(k.space) &* 0xC4CE_B9FE_1A85_EC53)
            &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: x >> 32) & mask
    }

    /// The id of `key`, or nil.
    func id(of key: Key) -> Int64? {
        slots.withUnsafeBufferPointer { s in
            let mask = s.count - 1
            var i = Self.home(key, mask)
            while true {
                if s[i].id == 0 { return nil }
                if s[i].key == key { return s[i].id }
                i = (i + 1) & mask
            }
        }
    }

    /// Gives `key`, which must not be present, the next id (count + 1) and returns it.
    mutating func add(_ key: Key) -> Int64 {
        if (count + 1) * 4 > slots.count * 3 { grow() }
        count += 1
        let id = Int64(count)
        slots.withUnsafeMutableBufferPointer { Self.place(Slot(key: key, id: id), in: $0) }
        return id
    }

    /// Puts `slot` into the first empty slot from its key's home (the key is not present).
    @inline(__always) private static func place(_ slot: Slot, in s: UnsafeMutableBufferPointer<Slot>) {
        let mask = s.count - 1
        var i = home(slot.key, mask)
        while s[i].id != 0 { i = (i + 1) & mask }
        s[i] = slot
    }

    private mutating func grow() {
        let old = slots
        slots = []
        slots = Self.emptySlots(old.count * 2)
        slots.withUnsafeMutableBufferPointer { s in
            for slot in old where slot.id != 0 { Self.place(slot, in: s) }
        }
    }
}
