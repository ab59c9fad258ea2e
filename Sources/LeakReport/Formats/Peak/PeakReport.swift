/// What held the memory at the high-water mark (`leakreport peak`): the moment total outstanding
/// memory was highest, the peak of each kind alone, and the stacks holding memory at that moment.
/// The collector records the peaks; this orders and prints them.
public struct PeakReport: Sendable {
    public struct KindPeak: Sendable, Equatable {
        public var kind: String
        /// Nanoseconds since the session's start.
        public var timeNs: UInt64
        public var bytes: UInt64
        public var blocks: UInt64

        public init(kind: String, timeNs: UInt64, bytes: UInt64, blocks: UInt64) {
            self.kind = kind
            self.timeNs = timeNs
            self.bytes = bytes
            self.blocks = blocks
        }
    }

    /// The peak of everything together (heap and mmap), and each kind's own peak.
    public var total: KindPeak
    public var kinds: [KindPeak]
    /// Outstanding at the end, for comparison.
    public var nowBytes: UInt64
    /// Stacks as they stood at the total peak (`inUseBytes`/`inUseBlocks` at that moment), largest first.
    public var atPeak: Profile

    public init(total: KindPeak, kinds: [KindPeak], nowBytes: UInt64, atPeak: Profile, top: Int? = nil) {
        self.total = total
        self.kinds = kinds.sorted { $0.bytes > $1.bytes }
        self.nowBytes = nowBytes
        var p = atPeak
        p.stacks = p.stacks.filter { $0.inUseBytes > 0 }.sorted { $0.inUseBytes > $1.inUseBytes }
        if let top { p.stacks = Array(p.stacks.prefix(top)) }
        self.atPeak = p
    }
}

/// `leakreport peak` as text.
public enum PeakTextRenderer {
    public static func render(_ r: PeakReport) -> String {
        var out = "peak: \(r.total.bytes) bytes in \(r.total.blocks) allocations at \(ByteFormat.duration(ns: r.total.timeNs)) (\(r.total.kind)); now: \(r.nowBytes) bytes\n"
        for k in r.kinds {
            out += "\t\(k.kind) alone: \(k.bytes) bytes in \(k.blocks) allocations at \(ByteFormat.duration(ns: k.timeNs))\n"
        }
        guard !r.atPeak.stacks.isEmpty else { return out + "No stack held memory at the peak.\n" }
        out += "\(r.atPeak.stacks.count) stacks holding memory at the peak (by bytes):\n"
        for s in r.atPeak.stacks {
            out += "\t\(s.inUseBytes) bytes in \(s.inUseBlocks) allocations from stack\(TextFrames.kindSuffix(s.kind))\n"
            out += TextFrames.lines(s.frames, in: r.atPeak)
        }
        return out
    }
}

/// `leakreport peak --format json`.
public struct PeakJSON: Codable, Equatable {
    public struct Peak: Codable, Equatable {
        public var kind: String
        public var timeNs: UInt64
        public var bytes: UInt64
        public var blocks: UInt64
        enum CodingKeys: String, CodingKey {
            case kind, bytes, blocks
            case timeNs = "time_ns"
        }
    }

    public struct Stack: Codable, Equatable {
        public var kind: String
        public var bytes: UInt64
        public var blocks: UInt64
        public var frames: [FrameJSON]
    }

    public var peak: Peak
    public var kinds: [Peak]
    public var nowBytes: UInt64
    public var stacks: [Stack]
    enum CodingKeys: String, CodingKey {
        case peak, kinds, stacks
        case nowBytes = "now_bytes"
    }

    public init(_ r: PeakReport) {
        func peak(_ k: PeakReport.KindPeak) -> Peak { Peak(kind: k.kind, timeNs: k.timeNs, bytes: k.bytes, blocks: k.blocks) }
        self.peak = peak(r.total)
        kinds = r.kinds.map(peak)
        nowBytes = r.nowBytes
        stacks = r.atPeak.stacks.map { Stack(kind: $0.kind, bytes: $0.inUseBytes, blocks: $0.inUseBlocks, frames: FrameJSON.frames($0.frames, in: r.atPeak)) }
    }

    public func encoded() -> String { FormatsJSON.encode(self) }
}
