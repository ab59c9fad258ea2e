/// Per-stack change of outstanding bytes and blocks from a base profile to a new one (two runs, or two
/// moments of one session), stacks matched by `StackIdentity`. Stacks of one profile with the same
/// identity (the same code reached through addresses that differ) are added up first.
public struct ProfileDiff: Sendable {
    public enum Status: String, Sendable {
        /// Only in the new profile.
        case new
        /// Only in the base profile.
        case gone
        case changed
        case unchanged
    }

    public struct Change: Sendable {
        public var status: Status
        public var baseBytes: UInt64
        public var baseBlocks: UInt64
        public var newBytes: UInt64
        public var newBlocks: UInt64
        /// The stack as the new profile has it (or the base, for a stack that is gone), for its frames.
        public var stack: ProfileStack
        /// Whether `stack` comes from the base profile.
        public var fromBase: Bool
        /// Where `stack` is in its profile's stacks (the first of its identity there).
        public var index: Int
        public var deltaBytes: Int64 { Int64(clamping: newBytes) - Int64(clamping: baseBytes) }
        public var deltaBlocks: Int64 { Int64(clamping: newBlocks) - Int64(clamping: baseBlocks) }
    }

    /// Growth first (largest first), then shrinkage (largest first), then, if asked for, the unchanged.
    public var changes: [Change]
    public var baseBytes: UInt64 = 0, baseBlocks: UInt64 = 0, newBytes: UInt64 = 0, newBlocks: UInt64 = 0
    public let base: Profile
    public let new: Profile

    public init(base: Profile, new: Profile, includeUnchanged: Bool = false) {
        // Stacks are keyed by interned frame identities: each distinct frame's strings are hashed once
        // per profile, not once per stack it appears in.
        var frames = Interner<StackIdentity.Frame>()
        var kinds = Interner<String>()
        func keys(_ p: Profile) -> [[Int32]] {
            var memo = FrameMemo<Int32>()
            return p.stacks.map { s in [kinds.id(s.kind)] + memo.map(s.frames) { frames.id(StackIdentity.Frame($0, in: p)) } }
        }
        self.init(base: base, new: new, baseKeys: keys(base), newKeys: keys(new), includeUnchanged: includeUnchanged)
    }

    /// The diff of two profiles whose stacks' identities are already known: `baseKeys[i]` and
    /// `newKeys[i]` stand for `StackIdentity` of stack i (equal keys, equal identities, across both).
    /// A reader that knows its stacks' shared frames names them this way without building every
    /// stack's frames (`stack` then carries the frames its profile has, possibly none).
    public init<Key: Hashable>(base: Profile, new: Profile, baseKeys: [Key], newKeys: [Key], includeUnchanged: Bool = false) {
        precondition(baseKeys.count == base.stacks.count && newKeys.count == new.stacks.count, "one key per stack")
        self.base = base
        self.new = new
        var byIdentity: [Key: Int] = [:]
        var all: [Change] = []
        // New first, so a stack in both keeps the new run's frames (addresses) for printing.
        for (p, isBase, keys) in [(new, false, newKeys), (base, true, baseKeys)] {
            for (index, (s, id)) in zip(p.stacks, keys).enumerated() {
                let i = byIdentity[id] ?? all.count
                if i == all.count {
                    byIdentity[id] = i
                    all.append(Change(status: isBase ? .gone : .new, baseBytes: 0, baseBlocks: 0, newBytes: 0, newBlocks: 0, stack: s, fromBase: isBase, index: index))
                }
                if isBase {
                    all[i].baseBytes +|= s.inUseBytes
                    all[i].baseBlocks +|= s.inUseBlocks
                } else {
                    all[i].newBytes +|= s.inUseBytes
                    all[i].newBlocks +|= s.inUseBlocks
                }
            }
        }
        for i in all.indices {
            baseBytes +|= all[i].baseBytes
            baseBlocks +|= all[i].baseBlocks
            newBytes +|= all[i].newBytes
            newBlocks +|= all[i].newBlocks
            if all[i].status == .new, all[i].baseBlocks > 0 || all[i].baseBytes > 0 {
                all[i].status = all[i].deltaBytes == 0 && all[i].deltaBlocks == 0 ? .unchanged : .changed
            }
            // A stack outstanding in neither (allocated and freed in both) has nothing to say.
            if all[i].newBytes == 0, all[i].baseBytes == 0, all[i].newBlocks == 0, all[i].baseBlocks == 0 { all[i].status = .unchanged }
        }
        func rank(_ c: Change) -> Int { c.deltaBytes > 0 ? 0 : c.deltaBytes < 0 ? 1 : c.deltaBlocks != 0 ? 2 : 3 }
        // Sorting indices moves small values instead of whole changes with their stacks.
        let kept = all.indices.filter { includeUnchanged || all[$0].status != .unchanged }
        let ranks = all.map(rank)
        changes = kept.sorted { i, j in
            let a = all[i], b = all[j], ra = ranks[i], rb = ranks[j]
            if ra != rb { return ra < rb }
            if a.deltaBytes != b.deltaBytes { return ra == 0 ? a.deltaBytes > b.deltaBytes : a.deltaBytes < b.deltaBytes }
            if a.deltaBlocks.magnitude != b.deltaBlocks.magnitude { return a.deltaBlocks.magnitude > b.deltaBlocks.magnitude }
            return i < j
        }.map { all[$0] }
    }

    public var deltaBytes: Int64 { Int64(clamping: newBytes) - Int64(clamping: baseBytes) }
    public var deltaBlocks: Int64 { Int64(clamping: newBlocks) - Int64(clamping: baseBlocks) }

    /// The profile a change's frames belong to.
    public func profile(of c: Change) -> Profile { c.fromBase ? base : new }
}
