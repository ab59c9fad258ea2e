/// `leakreport diff` as text: the totals, then each changed stack as memleak prints a stack, headed by
/// its change; growth first, then shrinkage.
public enum DiffTextRenderer {
    public static func render(_ d: ProfileDiff, top: Int? = nil) -> String {
        var out = "outstanding: \(d.baseBytes) -> \(d.newBytes) bytes (\(signed(d.deltaBytes))), "
        out += "\(d.baseBlocks) -> \(d.newBlocks) allocations (\(signed(d.deltaBlocks)))\n"
        let grew = d.changes.filter { $0.deltaBytes > 0 }.count, shrank = d.changes.filter { $0.deltaBytes < 0 }.count
        guard !d.changes.isEmpty else { return out + "No stack changed.\n" }
        out += "\(grew) stacks grew, \(shrank) shrank\(d.changes.count > grew + shrank ? ", \(d.changes.count - grew - shrank) changed only in count or not at all" : ""):\n"
        for c in top.map({ Array(d.changes.prefix($0)) }) ?? d.changes {
            out += "\t\(signed(c.deltaBytes)) bytes (\(signed(c.deltaBlocks)) allocations) from stack\(TextFrames.kindSuffix(c.stack.kind)): "
            out += "\(c.baseBytes) -> \(c.newBytes) bytes in \(c.baseBlocks) -> \(c.newBlocks) allocations"
            if c.status == .new || c.status == .gone { out += " [\(c.status.rawValue)]" }
            out += "\n" + TextFrames.lines(c.stack.frames, in: d.profile(of: c))
        }
        return out
    }

    static func signed(_ v: Int64) -> String { v > 0 ? "+\(v)" : "\(v)" }
}

/// `leakreport diff --format json`.
public struct DiffJSON: Codable, Equatable {
    public struct Totals: Codable, Equatable {
        public var baseBytes: UInt64
        public var baseBlocks: UInt64
        public var newBytes: UInt64
        public var newBlocks: UInt64
        public var deltaBytes: Int64
        public var deltaBlocks: Int64
        enum CodingKeys: String, CodingKey {
            case baseBytes = "base_bytes"
            case baseBlocks = "base_blocks"
            case newBytes = "new_bytes"
            case newBlocks = "new_blocks"
            case deltaBytes = "delta_bytes"
            case deltaBlocks = "delta_blocks"
        }
    }

    public struct Stack: Codable, Equatable {
        public var status: String
        public var kind: String
        public var change: Totals
        public var frames: [FrameJSON]
    }

    public var totals: Totals
    public var stacks: [Stack]

    public init(_ d: ProfileDiff) {
        totals = Totals(baseBytes: d.baseBytes, baseBlocks: d.baseBlocks, newBytes: d.newBytes, newBlocks: d.newBlocks, deltaBytes: d.deltaBytes, deltaBlocks: d.deltaBlocks)
        stacks = d.changes.map { c in
            Stack(
                status: c.status.rawValue, kind: c.stack.kind,
                change: Totals(baseBytes: c.baseBytes, baseBlocks: c.baseBlocks, newBytes: c.newBytes, newBlocks: c.newBlocks, deltaBytes: c.deltaBytes, deltaBlocks: c.deltaBlocks),
                frames: FrameJSON.frames(c.stack.frames, in: d.profile(of: c)))
        }
    }

    public func encoded() -> String { FormatsJSON.encode(self) }
}
