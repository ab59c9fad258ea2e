/// Values by stack id, for the tables a report or a live view's refresh reads once per stack. The writer
/// numbers stacks densely from 0, so an id below `denseLimit` indexes an array (hashing each look-up was a
/// fifth of a refresh on 131k stacks); an id beyond it (a damaged or hostile session) goes to a Dictionary,
/// so it cannot make the array huge.
public struct StackIDMap<Value: Sendable>: Sendable {
    @usableFromInline var dense: [Value?] = []
    @usableFromInline var sparse: [SessionStackID: Value] = [:]
    @usableFromInline let denseLimit: Int
    @usableFromInline var held = 0
    /// How many ids have a value.
    public var count: Int { held }

    public init(denseLimit: Int) { self.denseLimit = denseLimit }

    @inlinable public subscript(id: SessionStackID) -> Value? {
        get {
            let i = Int(id)
            guard i < denseLimit else { return sparse[id] }
            return i < dense.count ? dense[i] : nil
        }
        set {
            let i = Int(id)
            if i >= denseLimit {
                let old = newValue.map { sparse.updateValue($0, forKey: id) } ?? sparse.removeValue(forKey: id)
                held += (newValue != nil ? 1 : 0) - (old != nil ? 1 : 0)
                return
            }
            if i >= dense.count {
                guard newValue != nil else { return }
                // Grown by doubling: ids met in order cost amortized constant time each.
                dense += [Value?](repeating: nil, count: max(i + 1, 2 * dense.count) - dense.count)
            }
            held += (newValue != nil ? 1 : 0) - (dense[i] != nil ? 1 : 0)
            dense[i] = newValue
        }
    }
}
