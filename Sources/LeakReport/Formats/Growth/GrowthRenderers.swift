/// `leakreport growth` as text: memleak's stack blocks, each headed by its growth figures and a
/// sparkline of its outstanding bytes.
public enum GrowthTextRenderer {
    public static func render(_ r: GrowthRanking, of p: Profile) -> String {
        guard !r.entries.isEmpty else { return "No stack grew steadily (\(r.scored) stacks scored).\n" }
        var out = "\(r.entries.count) of \(r.scored) stacks growing (by growth score, bytes/s that look like a leak):\n"
        for e in r.entries {
            let s = p.stacks[e.stack], g = e.growth
            out += "\t\(ByteFormat.rate(g.rate)) for \(ByteFormat.duration(ns: g.growingForNs)), fit \(fixed(g.fit)), "
            out += "grew in \(percent(g.grewShare)) of intervals, score \(fixed(g.score, digits: 1)): "
            out += "\(s.inUseBytes) bytes in \(s.inUseBlocks) allocations from stack\(TextFrames.kindSuffix(s.kind)) \(Sparkline.render(s.series))\n"
            out += TextFrames.lines(s.frames, in: p)
        }
        return out
    }

    static func fixed(_ v: Double, digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
    static func percent(_ v: Double) -> String { String(format: "%.0f%%", v * 100) }
}

/// `leakreport growth --format json`: every figure of the score and the series, so a user can plot it.
public struct GrowthJSON: Codable, Equatable {
    public struct Stack: Codable, Equatable {
        public var kind: String
        public var pid: Int32?
        public var bytes: UInt64
        public var blocks: UInt64
        public var score: Double
        public var rateBytesPerSecond: Double
        public var growingForNs: UInt64
        public var fit: Double
        public var grewShare: Double
        public var retention: Double
        public var recency: Double
        public var coverage: Double
        public var sparkline: String
        public var series: [SeriesPointJSON]
        public var frames: [FrameJSON]
        enum CodingKeys: String, CodingKey {
            case kind, pid, bytes, blocks, score, fit, retention, recency, coverage, sparkline, series, frames
            case rateBytesPerSecond = "rate_bytes_per_s"
            case growingForNs = "growing_for_ns"
            case grewShare = "grew_share"
        }
    }

    public var scoredStacks: Int
    public var stacks: [Stack]
    enum CodingKeys: String, CodingKey {
        case stacks
        case scoredStacks = "scored_stacks"
    }

    public init(_ r: GrowthRanking, of p: Profile) {
        scoredStacks = r.scored
        stacks = r.entries.map { e in
            let s = p.stacks[e.stack], g = e.growth
            return Stack(
                kind: s.kind, pid: s.pid, bytes: s.inUseBytes, blocks: s.inUseBlocks, score: g.score, rateBytesPerSecond: g.rate,
                growingForNs: g.growingForNs, fit: g.fit, grewShare: g.grewShare, retention: g.retention, recency: g.recency, coverage: g.coverage,
                sparkline: Sparkline.render(s.series), series: s.series.map(SeriesPointJSON.init), frames: FrameJSON.frames(s.frames, in: p))
        }
    }

    public func encoded() -> String { FormatsJSON.encode(self) }
}
