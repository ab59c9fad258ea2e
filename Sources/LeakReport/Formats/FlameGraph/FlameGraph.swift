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
        // Intern frame names, then renumber them in name order so paths sort as the names do.
        var interned = Interner<String>()
        var memo = FrameMemo<Int32>()
        let firstSeen = p.stacks.map { s in
            memo.map(s.frames) { f in interned.id(FrameNames.name(f, in: p) + (f.inlined ? " (inlined)" : "")) }.reversed() as [Int32]
        }
        let byName = interned.values.indices.sorted { interned.values[$0] < interned.values[$1] }
        var rank = [Int32](repeating: 0, count: byName.count)
        for (r, i) in byName.enumerated() { rank[i] = Int32(r) }
        let names = byName.map { interned.values[$0] }
        let paths = firstSeen.map { $0.map { rank[Int($0)] } }
        // No stack may weigh more than its share of 2^64, so the layout's running sums cannot overflow
        // on a corrupt session (140 TB a stack at 131k stacks: no real figure comes near).
        let cap = UInt64.max / UInt64(max(1, p.stacks.count))
        let weights = p.stacks.map { min(cap, o.weight == .bytes ? $0.inUseBytes : $0.inUseBlocks) }
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
        // Per-name work (escaping, colour, length) is done once per name, not once per box.
        var escaped = [String?](repeating: nil, count: l.names.count)
        var colour = [String?](repeating: nil, count: l.names.count)
        var length = [Int](repeating: -1, count: l.names.count)
        // Deepest first so the root is last: the script reads the root's row as the bottom one.
        for r in l.rects.sorted(by: { $0.depth != $1.depth ? $0.depth > $1.depth : $0.start < $1.start }) {
            let name: String, safe: String, count: Int
            switch r.name {
            case FlameLayout.root: (name, safe, count) = ("all", "all", 3)
            case FlameLayout.merged:
                name = "\(r.merged) narrower frames"
                (safe, count) = (name, name.utf8.count)
            default:
                name = l.names[r.name]
                if escaped[r.name] == nil {
                    escaped[r.name] = escape(name)
                    length[r.name] = name.count
                }
                safe = escaped[r.name] ?? ""
                count = length[r.name]
            }
            let x = pad + Double(r.start) * scale, w = Double(r.width) * scale
            let y = height - bottom - Double(r.depth + 1) * frameHeight
            var info = "\(r.width) \(unit), " + percent(r.width, of: total)
            if o.mode == .growth { info += ", growth " + ByteFormat.rate(r.growth) }
            let fill: String
            switch r.name {
            case FlameLayout.root: fill = FlameColors.rootFill
            case FlameLayout.merged: fill = FlameColors.mergedFill
            default:
                if o.mode == .growth {
                    fill = FlameColors.growth(maxGrowth > 0 ? r.growth / maxGrowth : 0)
                } else {
                    let c = colour[r.name] ?? FlameColors.warm(name)
                    colour[r.name] = c
                    fill = c
                }
            }
            out += "<g><title>\(safe)\n\(info)</title><rect x=\"\(num(x))\" y=\"\(num(y))\" width=\"\(num(w))\" height=\"\(num(frameHeight - 1))\" fill=\"\(fill)\"/>"
            let fits = Int((w - 6) / charWidth)
            if fits >= 3 {
                let shown = count <= fits ? safe : escape(String(name.prefix(fits - 2)) + "..")
                out += "<text x=\"\(num(x + 3))\" y=\"\(num(y + frameHeight - 4.5))\">\(shown)</text>"
            }
            out += "</g>\n"
        }
        out += "</g>\n</svg>\n"
        return out
    }

    /// Two decimals at most, no trailing zeros: the file's size is mostly numbers. By hand, because
    /// String(format:) costs microseconds a call and a large graph has hundreds of thousands.
    static func num(_ v: Double) -> String {
        let hundredths = Int((v * 100).rounded())
        let whole = hundredths / 100, frac = abs(hundredths % 100)
        var s = (hundredths < 0 && whole == 0 ? "-" : "") + String(whole)
        if frac != 0 {
            s += frac % 10 == 0 ? "." + String(frac / 10) : (frac < 10 ? ".0" : ".") + String(frac)
        }
        return s
    }

    /// `76.13%`, always two decimals.
    static func percent(_ part: UInt64, of total: UInt64) -> String {
        let bp = Int((Double(part) * 10000 / Double(total)).rounded())
        let frac = bp % 100
        return "\(bp / 100)." + (frac < 10 ? "0" : "") + "\(frac)%"
    }

    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "\"") }) else {
            return s
        }
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
