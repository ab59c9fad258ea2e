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
        // Stacks are added up by their interned names, and each distinct line is spelled once.
        var names = Interner<String>()
        var memo = FrameMemo<Int32>(), kernelMemo = FrameMemo<Int32>()
        var sums: [[Int32]: UInt64] = [:]
        for s in p.stacks {
            let w = weight == .bytes ? s.inUseBytes : s.inUseBlocks
            guard w > 0 else { continue }
            let kernel = s.kind.hasPrefix("kernel")
            let ids = kernel
                ? kernelMemo.map(s.frames) { names.id(name($0, kernel: true, in: p)) }
                : memo.map(s.frames) { names.id(name($0, kernel: false, in: p)) }
            sums[ids.reversed(), default: 0] +|= w
        }
        let lines = sums.map { (ids, w) in ids.map { names.values[Int($0)] }.joined(separator: ";") + " \(w)\n" }
        return lines.sorted().joined()
    }

    /// One frame's name with flamegraph.pl's annotation.
    static func name(_ f: ProfileFrame, kernel: Bool, in p: Profile) -> String {
        let name = clean(FrameNames.name(f, in: p))
        return f.inlined ? name + "_[i]" : kernel ? name + "_[k]" : name
    }

    /// `;` separates frames and a newline ends the line, so neither may stand in a name (C++ names can
    /// hold `;` only in odd operator templates; they read the same with `:`).
    static func clean(_ name: String) -> String {
        guard name.contains(where: { $0 == ";" || $0 == "\n" || $0 == "\r" }) else { return name }
        return String(name.map { $0 == ";" ? ":" : ($0 == "\n" || $0 == "\r") ? " " : $0 })
    }
}
