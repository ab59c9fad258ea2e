/// Folded stacks, the input of flamegraph.pl, inferno and speedscope: one line per distinct stack,
/// outermost frame first, frames joined by `;`, then a space and the weight.
///
/// Frames are named as `FrameNames` names them. flamegraph.pl's annotations mark inlined frames
/// (`_[i]`) and kernel frames (`_[k]`, for stacks of kernel kinds), which it and inferno colour apart.
/// Stacks that fold to the same line are added up; stacks of weight 0 are left out. Lines are sorted,
/// so the output is the same for the same input.
public enum FoldedStacks {
    public enum Weight: Sendable {
        /// Outstanding bytes (the default).
        case bytes
        /// Outstanding allocations (`--count`).
        case count
    }

    public static func render(_ p: Profile, weight: Weight = .bytes) -> String {
        var sums: [String: UInt64] = [:]
        for s in p.stacks {
            let w = weight == .bytes ? s.inUseBytes : s.inUseBlocks
            guard w > 0 else { continue }
            sums[line(s, in: p), default: 0] += w
        }
        var out = ""
        for key in sums.keys.sorted() { out += "\(key) \(sums[key] ?? 0)\n" }
        return out
    }

    /// The `;`-joined frames of one stack, outermost first.
    public static func line(_ s: ProfileStack, in p: Profile) -> String {
        let kernel = s.kind.hasPrefix("kernel")
        return s.frames.reversed().map { f in
            var name = clean(FrameNames.name(f, in: p))
            if f.inlined { name += "_[i]" } else if kernel { name += "_[k]" }
            return name
        }.joined(separator: ";")
    }

    /// `;` separates frames and a newline ends the line, so neither may stand in a name (C++ names can
    /// hold `;` only in odd operator templates; they read the same with `:`).
    static func clean(_ name: String) -> String {
        guard name.contains(where: { $0 == ";" || $0 == "\n" || $0 == "\r" }) else { return name }
        return String(name.map { $0 == ";" ? ":" : ($0 == "\n" || $0 == "\r") ? " " : $0 })
    }
}
