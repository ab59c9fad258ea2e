/// Values by stack id, for the tables a report or a live view's refresh reads once per stack. The writer
/// numbers stacks densely from 0, so the ids it gives index an array (hashing each look-up was a fifth
/// of a refresh on 131k stacks); an id far beyond those held (a damaged or hostile session) goes to a
/// Dictionary, so it cannot make the array huge. The array grows only to a few times the values held,
/// and never past `denseLimit`: a session edited to hold one stack id just under 2^24 made every report
/// allocate a 16M-entry array (1.2 GB, 26 s under the fuzzer) before this.
public struct StackIDMap<Value: Sendable>: Sendable {
    /// Every id below `dense.count` is here, none in `sparse`.
    @usableFromInline var dense: [Value?] = []
    @usableFromInline var sparse: [SessionStackID: Value] = [:]
    @usableFromInline let denseLimit: Int
    @usableFromInline var held = 0
    /// How many ids have a value.
    public var count: Int { held }

    public init(denseLimit: Int) { self.denseLimit = denseLimit }

    /// The array may always grow this far, gaps or not.
    @usableFromInline static var denseFloor: Int { 4096 }

    @inlinable public subscript(id: SessionStackID) -> Value? {
        get {
            let i = Int(id)
            if i < dense.count { return dense[i] }
            return sparse.isEmpty ? nil : sparse[id]
        }
        set {
            let i = Int(id)
            if i < dense.count {
                held += (newValue != nil ? 1 : 0) - (dense[i] != nil ? 1 : 0)
                dense[i] = newValue
                return
            }
            // Grown by doubling: ids met in order cost amortized constant time each.
            let grown = max(i + 1, 2 * dense.count)
            if newValue != nil, grown <= denseLimit, grown <= max(Self.denseFloor, 4 * (held + 1)) {
                dense += [Value?](repeating: nil, count: grown - dense.count)
                // Ids the array now covers leave the Dictionary (in a session the writer wrote, there are none).
                for (k, v) in sparse where Int(k) < grown {
                    dense[Int(k)] = v
                    sparse[k] = nil
                }
                held += 1 - (dense[i] != nil ? 1 : 0)
                dense[i] = newValue
                return
            }
            let old = newValue.map { sparse.updateValue($0, forKey: id) } ?? sparse.removeValue(forKey: id)
            held += (newValue != nil ? 1 : 0) - (old != nil ? 1 : 0)
        }
    }
}
