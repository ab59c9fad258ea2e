/// A profile's stacks ranked by growth score, highest first (`leakreport growth`, `top --sort growth`).
public struct GrowthRanking: Sendable {
    public struct Entry: Sendable {
        /// Index into the profile's stacks.
        public var stack: Int
        public var growth: GrowthScore
    }

    /// Every stack with a positive score, highest first; ties keep the profile's order.
    public var entries: [Entry]
    /// How many stacks were scored.
    public var scored: Int

    public init(_ p: Profile, top: Int? = nil) {
        var all: [Entry] = []
        for (i, s) in p.stacks.enumerated() {
            let g = GrowthScore(s.series)
            if g.score > 0 { all.append(Entry(stack: i, growth: g)) }
        }
        all.sort { $0.growth.score != $1.growth.score ? $0.growth.score > $1.growth.score : $0.stack < $1.stack }
        entries = top.map { Array(all.prefix($0)) } ?? all
        scored = p.stacks.count
    }
}
