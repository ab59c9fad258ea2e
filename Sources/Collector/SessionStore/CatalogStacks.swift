import Vocabulary

extension StackCatalog {
    /// The catalog's stacks by id. The writer numbers stacks densely from 0, so an id indexes an array
    /// (a live view adds tens of thousands of stacks per refresh: a Dictionary's hashing and rehashing
    /// was a fifth of reading them); an id far beyond that (another writer, a damaged row) goes to a
    /// Dictionary instead, so it cannot make the array huge.
    public struct Stacks: Sendable {
        private var dense: [Stack?] = []
        private var sparse: [SessionStackID: Stack] = [:]
        /// How many stacks are held.
        public private(set) var count = 0
        private static let denseLimit = 1 << 24

        public subscript(id: SessionStackID) -> Stack? {
            get {
                let i = Int(id)
                guard i < Self.denseLimit else { return sparse[id] }
                return i < dense.count ? dense[i] : nil
            }
            set {
                let i = Int(id)
                if i >= Self.denseLimit {
                    let old = newValue.map { sparse.updateValue($0, forKey: id) } ?? sparse.removeValue(forKey: id)
                    count += (newValue != nil ? 1 : 0) - (old != nil ? 1 : 0)
                    return
                }
                if i >= dense.count {
                    guard newValue != nil else { return }
                    // Grown by doubling: stacks met in id order cost amortized constant time each.
                    dense += [Stack?](repeating: nil, count: max(i + 1, 2 * dense.count) - dense.count)
                }
                count += (newValue != nil ? 1 : 0) - (dense[i] != nil ? 1 : 0)
                dense[i] = newValue
            }
        }
    }
}
