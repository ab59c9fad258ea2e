extension LiveView.Row {
    /// Stack `i`'s row, or nil when it holds nothing (the view lists only stacks with outstanding memory).
    init?(_ i: Int, of stacks: [ProfileStack], growth: [Double]?) {
        let s = stacks[i]
        guard s.inUseBytes > 0 || s.inUseBlocks > 0 else { return nil }
        self.init(stack: i, bytes: s.inUseBytes, blocks: s.inUseBlocks, growth: growth.flatMap { $0.indices.contains(i) ? $0[i] : nil })
    }

    /// Whether `a` comes before `b` in the view's order by `sort`: largest first, ties by stack index.
    static func before(_ a: Self, _ b: Self, by sort: LiveView.Sort) -> Bool {
        switch sort {
        case .bytes: return a.bytes != b.bytes ? a.bytes > b.bytes : a.stack < b.stack
        case .count: return a.blocks != b.blocks ? a.blocks > b.blocks : a.stack < b.stack
        case .growth: return a.growth != b.growth ? (a.growth ?? 0) > (b.growth ?? 0) : a.stack < b.stack
        }
    }
}

extension LiveView {
    /// A model's rows kept in order across a live view's refreshes: an interval changes a few stacks'
    /// figures, so their rows are taken out and merged back in (linear) rather than all 131k sorted again.
    /// The rows are those `Model` would make from the same stacks and growth scores, in the same order.
    public struct SortedRows: Sendable {
        public private(set) var rows: [Row] = []
        /// The order they are in; nil before the first update.
        public private(set) var sort: Sort?
        /// The rows before the last update, kept to merge the next one into: 131k rows are megabytes,
        /// and a new array at every refresh was faulted in anew (the model holds only `rows`).
        private var spare: [Row] = []

        public init() {}

        /// Brings the rows up to date with `stacks` and `growth` (their scores, index for index).
        /// `changed`: the stacks whose figures or score changed, or that are new, since the last update
        /// (any order, repeats allowed); every row is made again when `everything`, or the order differs.
        public mutating func update(_ stacks: [ProfileStack], growth: [Double], changed: [Int], sort: Sort, everything: Bool) {
            guard !everything, self.sort == sort else {
                var all: [Row] = []
                all.reserveCapacity(stacks.count)
                for i in stacks.indices { if let r = Row(i, of: stacks, growth: growth) { all.append(r) } }
                rows = all.sorted { Row.before($0, $1, by: sort) }
                self.sort = sort
                return
            }
            if changed.isEmpty { return }
            var moved = [Bool](repeating: false, count: stacks.count)
            var fresh: [Row] = []
            for i in changed where !moved[i] {
                moved[i] = true
                if let r = Row(i, of: stacks, growth: growth) { fresh.append(r) }
            }
            fresh.sort { Row.before($0, $1, by: sort) }
            var merged = spare
            spare = []
            merged.removeAll(keepingCapacity: true)
            // Doubling, as appending would: while a session gains stacks, an exact reserve reallocated at every refresh.
            let needed = rows.count + fresh.count
            if merged.capacity < needed { merged.reserveCapacity(max(needed, 2 * merged.capacity)) }
            var f = 0
            for r in rows where !(r.stack < moved.count && moved[r.stack]) {
                while f < fresh.count, Row.before(fresh[f], r, by: sort) {
                    merged.append(fresh[f])
                    f += 1
                }
                merged.append(r)
            }
            merged += fresh[f...]
            spare = rows
            rows = merged
        }
    }
}
