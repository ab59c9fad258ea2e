import Foundation

/// A self-contained SVG flame graph of outstanding memory: one box per frame, as wide as the bytes (or
/// allocations) outstanding through it, callers below callees. Hover, click-to-zoom and search work
/// offline (see `FlameGraphScript`).
///
/// - Leak mode colours frames by name; growth mode by how fast the stacks through a frame grow (their
///   growth scores added up), red for the fastest.
/// - Frames narrower than `minFrameWidth` pixels are merged with narrow neighbours into one grey box
///   ("N narrower frames"), or left out when even merged they stay too narrow; if the picture would
///   still be larger than `maxBytes`, the minimum width is doubled until it fits.
public enum FlameGraph {
    public enum Mode: Sendable {
        case leak
        case growth
    }

    public struct Options: Sendable {
        public var mode: Mode
        public var weight: FoldedStacks.Weight
        public var title: String?
        /// Image width in pixels.
        public var width: Double
        public var minFrameWidth: Double
        public var maxBytes: Int

        public init(mode: Mode = .leak, weight: FoldedStacks.Weight = .bytes, title: String? = nil, width: Double = 1200, minFrameWidth: Double = 0.1, maxBytes: Int = 9_000_000) {
            self.mode = mode
            self.weight = weight
            self.title = title
            self.width = width
            self.minFrameWidth = minFrameWidth
            self.maxBytes = maxBytes
        }
    }

    static let pad = 10.0, frameHeight = 16.0, top = 40.0, bottom = 36.0, charWidth = 7.1

    public static func svg(_ p: Profile, options o: Options = Options()) -> String {
        // Intern frame names, numbered in name order so paths sort as the names do.
        var index: [String: Int32] = [:]
        var raw: [[String]] = []
        raw.reserveCapacity(p.stacks.count)
        for s in p.stacks {
            let path = s.frames.reversed().map { f in FrameNames.name(f, in: p) + (f.inlined ? " (inlined)" : "") }
            for n in path where index[n] == nil { index[n] = 0 }
            raw.append(path)
        }
        let names = index.keys.sorted()
        for (i, n) in names.enumerated() { index[n] = Int32(i) }
        let paths = raw.map { $0.map { index[$0] ?? 0 } }
        let weights = p.stacks.map { o.weight == .bytes ? $0.inUseBytes : $0.inUseBlocks }
        let growth = o.mode == .growth ? p.stacks.map { GrowthScore($0.series).score } : [Double](repeating: 0, count: p.stacks.count)
        let order = FlameLayout.sortedOrder(paths: paths, weights: weights)

        var fraction = o.minFrameWidth / (o.width - 2 * pad)
        while true {
            let layout = FlameLayout(names: names, paths: paths, order: order, weights: weights, growth: growth, minFraction: fraction)
            let text = render(layout, o)
            if text.utf8.count <= o.maxBytes || fraction >= 0.25 { return text }
            fraction *= 2
        }
    }

    private static func render(_ l: FlameLayout, _ o: Options) -> String {
        let drawWidth = o.width - 2 * pad
        let height = top + Double(l.maxDepth + 1) * frameHeight + bottom
        let unit = o.weight == .bytes ? "bytes" : "allocations"
        let title = o.title ?? (o.mode == .leak ? "Outstanding memory" : "Outstanding memory, coloured by growth")
        let maxGrowth = l.rects.filter { $0.depth > 0 }.map { abs($0.growth) }.max() ?? 0
        var out = """
            <?xml version="1.0" standalone="no"?>
            <svg version="1.1" width="\(num(o.width))" height="\(num(height))" viewBox="0 0 \(num(o.width)) \(num(height))" \
            xmlns="http://www.w3.org/2000/svg" onload="init(evt)" data-width="\(num(drawWidth))" data-pad="\(num(pad))" data-frame-height="\(num(frameHeight))">
            <style>\(FlameGraphScript.style)</style>
            <script type="text/ecmascript"><![CDATA[\(FlameGraphScript.script)]]></script>
            <rect x="0" y="0" width="100%" height="100%" fill="#fbfaf6"/>
            <text id="title" x="\(num(o.width / 2))" y="24" text-anchor="middle">\(escape(title))</text>
            <text id="unzoom" class="hide" x="\(num(pad))" y="24">Reset Zoom</text>
            <text id="search" x="\(num(o.width - pad - 100))" y="24">Search</text>
            <text id="details" x="\(num(pad))" y="\(num(height - 12))"> </text>
            <text id="matched" x="\(num(o.width - pad - 100))" y="\(num(height - 12))"> </text>
            <g id="frames">

            """
        let total = max(l.total, 1)
        let scale = drawWidth / Double(total)
        // Deepest first so the root is last: the script reads the root's row as the bottom one.
        for r in l.rects.sorted(by: { $0.depth != $1.depth ? $0.depth > $1.depth : $0.start < $1.start }) {
            let name: String
            switch r.name {
            case FlameLayout.root: name = "all"
            case FlameLayout.merged: name = "\(r.merged) narrower frames"
            default: name = l.names[r.name]
            }
            let x = pad + Double(r.start) * scale, w = Double(r.width) * scale
            let y = height - bottom - Double(r.depth + 1) * frameHeight
            var info = "\(r.width) \(unit), " + String(format: "%.2f%%", Double(r.width) * 100 / Double(total))
            if o.mode == .growth { info += ", growth " + ByteFormat.rate(r.growth) }
            let fill: String
            switch r.name {
            case FlameLayout.root: fill = FlameColors.rootFill
            case FlameLayout.merged: fill = FlameColors.mergedFill
            default: fill = o.mode == .growth ? FlameColors.growth(maxGrowth > 0 ? r.growth / maxGrowth : 0) : FlameColors.warm(name)
            }
            out += "<g><title>\(escape(name))\n\(info)</title><rect x=\"\(num(x))\" y=\"\(num(y))\" width=\"\(num(w))\" height=\"\(num(frameHeight - 1))\" fill=\"\(fill)\"/>"
            let fits = Int((w - 6) / charWidth)
            if fits >= 3 {
                let shown = name.count <= fits ? name : String(name.prefix(fits - 2)) + ".."
                out += "<text x=\"\(num(x + 3))\" y=\"\(num(y + frameHeight - 4.5))\">\(escape(shown))</text>"
            }
            out += "</g>\n"
        }
        out += "</g>\n</svg>\n"
        return out
    }

    /// Two decimals at most, no trailing zeros: the file's size is mostly numbers.
    static func num(_ v: Double) -> String {
        var s = String(format: "%.2f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func escape(_ s: String) -> String {
        guard s.contains(where: { $0 == "&" || $0 == "<" || $0 == ">" || $0 == "\"" }) else { return s }
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
