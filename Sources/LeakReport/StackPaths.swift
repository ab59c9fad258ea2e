import SessionStore
import Vocabulary

/// Numbers the paths of stack trees by what their locations read as: two nodes get one id when their
/// parents' paths have one id and their locations the same key. What "reads the same" means is the
/// caller's (`SymbolizedStacks`: every symbolized fact; diff: the facts that survive ASLR). One
/// numbering can span several sessions, so equal paths of two runs get one id. A parent's node id is
/// below its children's, so one pass in id order sees every parent first; millions of nodes go through
/// `IntMap`, not a Dictionary (whose hashing and resizing was half of `top`'s time at 131k stacks).
struct StackPaths {
    private var table: IntMap
    /// Path ids handed out so far; 0 is the root (the empty path).
    private(set) var count: Int32 = 0

    init(capacity: Int) { table = IntMap(capacity: capacity) }

    /// Per node of `catalog`, its path id. `locationKeys[l]` is location l's key (0 or more).
    /// `distinctKeys`: no two locations of this catalog have one key. The writer stores each (parent,
    /// location) node once, so a path this catalog's node creates is then reached by that node alone,
    /// and its children's keys cannot be in the table yet: they are added without a look-up (the first
    /// session of a diff pays no look-ups at all).
    mutating func number(_ catalog: StackCatalog, locationKeys: [Int32], distinctKeys: Bool = false) -> [Int32] {
        let parents = catalog.parents, locations = catalog.nodeLocations
        var ids = [Int32](repeating: 0, count: parents.count)
        var created = [Bool](repeating: false, count: distinctKeys ? parents.count : 0)
        for n in 1..<max(parents.count, 1) {
            let parent = Int(parents[n])
            // +1: a key is never 0 (IntMap's empty slot), even for the root's first location key.
            let key = UInt64(UInt32(bitPattern: ids[parent])) << 32 | (UInt64(UInt32(bitPattern: locationKeys[Int(locations[n])])) + 1)
            if !(distinctKeys && created[parent]), let id = table.get(key) {
                ids[n] = Int32(bitPattern: id)
            } else {
                count += 1
                table.set(key, UInt32(bitPattern: count))
                ids[n] = count
                if distinctKeys { created[n] = true }
            }
        }
        return ids
    }
}
