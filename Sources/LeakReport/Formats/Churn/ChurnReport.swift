/// Temporary allocations by stack (`leakreport churn`): blocks freed soon after they were allocated,
/// which cost time, not memory. The collector counts them; this orders and prints them.
public struct ChurnReport: Sendable {
    public struct Stack: Sendable {
        public var frames: [ProfileFrame]
        public var kind: String
        /// Allocations from this stack that lived shorter than the threshold, and their bytes.
        public var temporaryBlocks: UInt64
        public var temporaryBytes: UInt64
        /// All allocations from this stack.
        public var allocatedBlocks: UInt64

        public init(frames: [ProfileFrame], kind: String = "heap", temporaryBlocks: UInt64, temporaryBytes: UInt64, allocatedBlocks: UInt64) {
            self.frames = frames
            self.kind = kind
            self.temporaryBlocks = temporaryBlocks
            self.temporaryBytes = temporaryBytes
            self.allocatedBlocks = allocatedBlocks
        }
    }

    /// What "temporary" meant, in words: "freed before the same thread's next allocation", "shorter than 1 ms".
    public var threshold: String
    /// Every allocation of the session, for the shares.
    public var totalAllocations: UInt64
    /// Most temporary allocations first.
    public var stacks: [Stack]
    /// Gives the modules the frames point into.
    public var profile: Profile
    public var temporaryBlocks: UInt64
    public var temporaryBytes: UInt64

    public init(threshold: String, totalAllocations: UInt64, stacks: [Stack], modules: [ProfileModule] = [], top: Int? = nil) {
        self.threshold = threshold
        self.totalAllocations = totalAllocations
        let sorted = stacks.filter { $0.temporaryBlocks > 0 }.sorted { a, b in
            a.temporaryBlocks != b.temporaryBlocks ? a.temporaryBlocks > b.temporaryBlocks : a.temporaryBytes > b.temporaryBytes
        }
        temporaryBlocks = sorted.reduce(0) { $0 +| $1.temporaryBlocks }
        temporaryBytes = sorted.reduce(0) { $0 +| $1.temporaryBytes }
        self.stacks = top.map { Array(sorted.prefix($0)) } ?? sorted
        profile = Profile(stacks: [], modules: modules)
    }

    /// Temporary allocations as a share of all allocations, 0 when there were none.
    public func share(_ blocks: UInt64) -> Double { totalAllocations > 0 ? Double(blocks) / Double(totalAllocations) : 0 }
}

/// `leakreport churn` as text, memleak's stack blocks headed by counts and shares.
public enum ChurnTextRenderer {
    public static func render(_ r: ChurnReport) -> String {
        var out = "temporary allocations (\(r.threshold)): \(r.temporaryBlocks) of \(r.totalAllocations) allocations (\(pct(r.share(r.temporaryBlocks)))), \(r.temporaryBytes) bytes\n"
        guard !r.stacks.isEmpty else { return out + "No temporary allocations.\n" }
        out += "\(r.stacks.count) stacks by temporary allocations:\n"
        for s in r.stacks {
            out += "\t\(s.temporaryBlocks) temporary allocations (\(pct(r.share(s.temporaryBlocks))) of all, "
            out += "\(pct(s.allocatedBlocks > 0 ? Double(s.temporaryBlocks) / Double(s.allocatedBlocks) : 0)) of this stack's), "
            out += "\(s.temporaryBytes) bytes from stack\(TextFrames.kindSuffix(s.kind))\n"
            out += TextFrames.lines(s.frames, in: r.profile)
        }
        return out
    }

    static func pct(_ v: Double) -> String { String(format: "%.2f%%", v * 100) }
}

/// `leakreport churn --format json`.
public struct ChurnJSON: Codable, Equatable {
    public struct Stack: Codable, Equatable {
        public var kind: String
        public var temporaryBlocks: UInt64
        public var temporaryBytes: UInt64
        public var allocatedBlocks: UInt64
        public var shareOfAll: Double
        public var frames: [FrameJSON]
        enum CodingKeys: String, CodingKey {
            case kind, frames
            case temporaryBlocks = "temporary_blocks"
            case temporaryBytes = "temporary_bytes"
            case allocatedBlocks = "allocated_blocks"
            case shareOfAll = "share_of_all"
        }
    }

    public var threshold: String
    public var totalAllocations: UInt64
    public var temporaryBlocks: UInt64
    public var temporaryBytes: UInt64
    public var stacks: [Stack]
    enum CodingKeys: String, CodingKey {
        case threshold, stacks
        case totalAllocations = "total_allocations"
        case temporaryBlocks = "temporary_blocks"
        case temporaryBytes = "temporary_bytes"
    }

    public init(_ r: ChurnReport) {
        threshold = r.threshold
        totalAllocations = r.totalAllocations
        temporaryBlocks = r.temporaryBlocks
        temporaryBytes = r.temporaryBytes
        stacks = r.stacks.map {
            Stack(
                kind: $0.kind, temporaryBlocks: $0.temporaryBlocks, temporaryBytes: $0.temporaryBytes, allocatedBlocks: $0.allocatedBlocks,
                shareOfAll: r.share($0.temporaryBlocks), frames: FrameJSON.frames($0.frames, in: r.profile))
        }
    }

    public func encoded() -> String { FormatsJSON.encode(self) }
}
