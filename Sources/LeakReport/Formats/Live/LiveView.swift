/// The screen of `leakreport top --live` and `leakcollect --live`, as a pure function: a model of
/// what the session holds now in, the terminal's lines out. Key handling and the redraw loop live with
/// the commands; they change `sort`, `selected`, `expanded` and `paused` and render again.
public enum LiveView {
    public enum Sort: String, Sendable {
        case bytes, count, growth
    }

    /// One row of the table: a stack with its figures now.
    public struct Row: Sendable {
        /// Index into the model's profile stacks.
        public var stack: Int
        public var bytes: UInt64
        public var blocks: UInt64
        /// The growth score (bytes/s that look like a leak), as `leakreport growth` ranks. Scored for
        /// every row only when sorting by growth; otherwise only for the rows on screen.
        public var growth: Double?
    }

    public struct Model: Sendable {
        public var pid: Int32
        public var command: String
        public var outstandingBytes: UInt64
        public var peakBytes: UInt64
        public var rssBytes: UInt64?
        public var lostEvents: UInt64
        public var elapsedNs: UInt64
        /// Total outstanding bytes over time, oldest first.
        public var totalSeries: [UInt64]
        public var profile: Profile
        public var sort: Sort {
            // Setting the order it already has (the terminal does at every redraw) keeps the rows: a
            // sort of 131k rows was a sixth of a redraw.
            didSet { if sort != oldValue { rows = Model.sorted(rows, by: sort, in: profile) } }
        }
        /// Index into `rows` of the highlighted row, and whether its stack is shown in full.
        public var selected: Int
        public var expanded: Bool
        public var paused: Bool
        /// Every stack with outstanding memory, in `sort` order.
        public private(set) var rows: [Row]

        /// `peakBytes` and `totalSeries` default to what the stacks' series add up to. `growth`: the
        /// stacks' growth scores, index for index, when the caller has them (else scored as needed).
        public init(
            profile: Profile, pid: Int32, command: String, rssBytes: UInt64?, lostEvents: UInt64, elapsedNs: UInt64, peakBytes: UInt64? = nil,
            totalSeries: [UInt64]? = nil, sort: Sort = .bytes, selected: Int = 0, expanded: Bool = false, paused: Bool = false,
            growth: [Double]? = nil, rows kept: SortedRows? = nil
        ) {
            self.profile = profile
            self.pid = pid
            self.command = command
            self.rssBytes = rssBytes
            self.lostEvents = lostEvents
            self.elapsedNs = elapsedNs
            self.sort = sort
            self.selected = selected
            self.expanded = expanded
            self.paused = paused
            let rows: [Row]
            if let kept, kept.sort == sort {
                rows = kept.rows
            } else {
                var unsorted: [Row] = []
                unsorted.reserveCapacity(profile.stacks.count)
                for i in profile.stacks.indices { if let r = Row(i, of: profile.stacks, growth: growth) { unsorted.append(r) } }
                rows = Model.sorted(unsorted, by: sort, in: profile)
            }
            let now = rows.reduce(UInt64(0)) { $0 +| $1.bytes }
            outstandingBytes = now
            let series = totalSeries ?? Model.total(of: profile)
            self.totalSeries = series
            self.peakBytes = peakBytes ?? max(now, series.max() ?? 0)
            self.rows = rows
        }

        static func sorted(_ rows: [Row], by sort: Sort, in p: Profile) -> [Row] {
            var rows = rows
            if sort == .growth {
                for i in rows.indices where rows[i].growth == nil { rows[i].growth = GrowthScore(p.stacks[rows[i].stack].series).score }
            }
            return rows.sorted { Row.before($0, $1, by: sort) }
        }

        /// The stacks' series added up point by point. They share the collector's intervals, so
        /// adding by position is the common case; series on other times are added by time.
        static func total(of p: Profile) -> [UInt64] {
            guard let times = p.stacks.max(by: { $0.series.count < $1.series.count })?.series.map(\.timeNs) else { return [] }
            var byPosition = [UInt64](repeating: 0, count: times.count)
            let aligned = p.stacks.allSatisfy { s in
                s.series.count <= times.count && zip(s.series, times.suffix(s.series.count)).allSatisfy { $0.timeNs == $1 }
            }
            if aligned {
                // A stack first seen later has a shorter series that ends with the others.
                for s in p.stacks {
                    let offset = times.count - s.series.count
                    for (k, pt) in s.series.enumerated() { byPosition[offset + k] +|= pt.bytes }
                }
                return byPosition
            }
            var sums: [UInt64: UInt64] = [:]
            for s in p.stacks { for pt in s.series { sums[pt.timeNs, default: 0] +|= pt.bytes } }
            return sums.keys.sorted().map { sums[$0] ?? 0 }
        }
    }

    /// `height` lines at most, none wider than `width` characters.
    public static func render(_ m: Model, width: Int, height: Int) -> [String] {
        let w = max(width, 20)
        var lines: [String] = []
        var head = "pid \(m.pid) \(m.command)"
        let clock = "elapsed \(ByteFormat.duration(ns: m.elapsedNs))" + (m.paused ? " [paused]" : "")
        head = fit(head, w - clock.count - 1)
        lines.append(head + String(repeating: " ", count: max(1, w - head.count - clock.count)) + clock)
        var facts = "outstanding \(ByteFormat.human(m.outstandingBytes)) (peak \(ByteFormat.human(m.peakBytes)))"
        facts += "  RSS " + (m.rssBytes.map { ByteFormat.human($0) } ?? "?")
        facts += "  lost_events \(m.lostEvents)  stacks \(m.rows.count)"
        lines.append(facts)
        let label = "total "
        lines.append(label + Sparkline.render(m.totalSeries, width: w - label.count))
        lines.append("")

        let bytesW = 10, blocksW = 9, growthW = 13
        let stackW = max(8, w - bytesW - blocksW - growthW - 5)
        lines.append(
            " " + pad("BYTES", bytesW) + " " + pad("BLOCKS", blocksW) + " " + pad("GROWTH", growthW) + "  " + "STACK (by \(m.sort.rawValue))")
        let footer = "b bytes  c count  g growth  p pause  up/down select  enter expand  q quit"
        let expandedFrames = m.expanded && m.rows.indices.contains(m.selected) ? m.profile.stacks[m.rows[m.selected].stack].frames : []
        let room = max(0, height - lines.count - 1)
        // Rows around the selection, so it stays on screen; the expanded stack takes rows below it.
        let tableRows = max(1, room - min(expandedFrames.count, max(0, room - 1)))
        let first = max(0, min(m.selected - tableRows + 1, m.rows.count - tableRows))
        var body: [String] = []
        for i in first..<min(m.rows.count, first + tableRows) {
            let r = m.rows[i], s = m.profile.stacks[r.stack]
            let growth = r.growth ?? GrowthScore(s.series).score
            let marker = i == m.selected ? ">" : " "
            let summary = s.frames.prefix(6).map { FrameNames.name($0, in: m.profile) }.joined(separator: " < ")
            body.append(
                marker + pad(ByteFormat.human(r.bytes), bytesW) + " " + pad(String(r.blocks), blocksW) + " " + pad(growth > 0 ? ByteFormat.rate(growth) : "-", growthW) + "  "
                    + fit(summary, stackW))
            if i == m.selected {
                for f in expandedFrames { body.append(String(repeating: " ", count: bytesW + blocksW + growthW + 5) + fit(TextFrames.frame(f, in: m.profile), stackW)) }
            }
        }
        if m.rows.isEmpty { body.append("  no outstanding allocations") }
        lines += body.prefix(room)
        lines.append(footer)
        return lines.prefix(max(height, 1)).map { fit($0, w) }
    }

    /// Cut to `width` characters, marking the cut with `…`.
    static func fit(_ s: String, _ width: Int) -> String {
        guard width > 0 else { return "" }
        guard s.count > width else { return s }
        return String(s.prefix(width - 1)) + "…"
    }

    /// Right-aligned in `width` columns.
    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}
