/// Frames as the text reports print them, the way `leakreport top` and memleak do:
/// `0xADDR function+0xOFF [module] file:line`, innermost first.
public enum TextFrames {
    /// `0x` and 16 hex digits, so frame columns line up.
    public static func address(_ a: UInt64) -> String {
        let h = String(a, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - h.count)) + h
    }

    public static func frame(_ f: ProfileFrame, in p: Profile) -> String {
        var s = address(f.address) + " "
        if let fn = f.function {
            s += fn
            if let off = f.offset { s += "+0x" + String(off, radix: 16) }
        } else {
            s += "[unknown]"
        }
        if f.inlined { s += " (inlined)" }
        if let m = p.module(of: f) { s += " [" + FrameNames.basename(m.path) + "]" }
        if let file = f.file, let line = f.line { s += " \(file):\(line)" }
        return s
    }

    /// The stack's frames, each on its own line after `indent`; up to and including `main`, because
    /// below it is the C runtime starting the program, the same in every stack.
    public static func lines(_ frames: [ProfileFrame], in p: Profile, indent: String = "\t\t") -> String {
        if frames.isEmpty { return indent + "[no stack captured]\n" }
        let end = frames.firstIndex { $0.function == "main" }.map { $0 + 1 } ?? frames.count
        return frames[..<end].map { indent + frame($0, in: p) + "\n" }.joined()
    }

    /// ` (mmap)` after a count for kinds other than heap, as `top` names them.
    public static func kindSuffix(_ kind: String) -> String { kind == "heap" ? "" : " (\(kind))" }
}
