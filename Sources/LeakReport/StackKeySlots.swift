import SessionStore
import Vocabulary

/// Slots of (stack, kind) keys, numbered 0, 1, 2, … in the order they were added, for the tables a live
/// view's refresh looks up once per stack an interval names: a `StackIDMap` per kind.
struct StackKeySlots: Sendable {
    /// Per kind (`BlockKind.slot`), by stack id: the slot.
    private var byKind = Array(repeating: StackIDMap<Int32>(denseLimit: 1 << 22), count: BlockKind.allCases.count)
    /// How many keys have a slot.
    private(set) var count = 0

    /// The key's slot, if it has one.
    @inline(__always) subscript(key: LiveAggregateKey) -> Int? {
        byKind[key.kind.slot][key.stackID].map(Int.init)
    }

    /// The key's slot, given the next one if it had none (`added`).
    mutating func slot(of key: LiveAggregateKey) -> (slot: Int, added: Bool) {
        if let s = self[key] { return (s, false) }
        let slot = count
        count += 1
        byKind[key.kind.slot][key.stackID] = Int32(slot)
        return (slot, true)
    }
}
