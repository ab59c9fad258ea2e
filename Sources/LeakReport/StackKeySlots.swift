import SessionStore
import Vocabulary

/// Slots of (stack, kind) keys, numbered 0, 1, 2, … in the order they were added, for the tables a live
/// view's refresh looks up once per stack an interval names. Small stack ids (the writer numbers stacks
/// densely) index an array per kind; larger ones fall back to a dictionary, so a hostile id cannot make
/// the report allocate gigabytes. Hashing each look-up was a fifth of a refresh on 131k stacks.
struct StackKeySlots: Sendable {
    /// Per kind (`BlockKind.slot`), by stack id: the slot, or -1.
    private var dense: [[Int32]] = Array(repeating: [], count: BlockKind.allCases.count)
    private var sparse: [LiveAggregateKey: Int] = [:]
    private static let denseLimit = 1 << 22
    /// How many keys have a slot.
    private(set) var count = 0

    /// The key's slot, if it has one.
    @inline(__always) subscript(key: LiveAggregateKey) -> Int? {
        let id = Int(key.stackID)
        guard id < Self.denseLimit else { return sparse[key] }
        let slots = dense[key.kind.slot]
        guard id < slots.count, slots[id] >= 0 else { return nil }
        return Int(slots[id])
    }

    /// The key's slot, given the next one if it had none (`added`).
    mutating func slot(of key: LiveAggregateKey) -> (slot: Int, added: Bool) {
        if let s = self[key] { return (s, false) }
        let id = Int(key.stackID), slot = count
        count += 1
        if id < Self.denseLimit {
            let k = key.kind.slot
            // Grown by doubling, so stacks met in id order cost amortized constant time each.
            if id >= dense[k].count { dense[k] += [Int32](repeating: -1, count: max(id + 1, 2 * dense[k].count) - dense[k].count) }
            dense[k][id] = Int32(slot)
        } else {
            sparse[key] = slot
        }
        return (slot, true)
    }
}
