import ReportFormats
import SessionStore
import Vocabulary

/// How stacks are ordered in `top`.
public enum TopSort: String, CaseIterable, Sendable {
    case bytes, count
    /// By the growth score of `leakreport growth`, from the session's interval history.
    case growth
}

/// What `leakreport top` was asked for.
public struct TopOptions: Sendable {
    public var top: Int
    public var sort: TopSort
    public var filter: LiveFilter
    /// List each live block's address and size under its stack.
    public var addresses: Bool
    public var suppressions: Suppressions

    public init(
        top: Int = 10, sort: TopSort = .bytes, filter: LiveFilter = LiveFilter(), addresses: Bool = false,
        suppressions: Suppressions = Suppressions()
    ) {
        self.top = top
        self.sort = sort
        self.filter = filter
        self.addresses = addresses
        self.suppressions = suppressions
    }
}

/// One stack's outstanding allocations of one kind.
public struct TopStack: Sendable, Equatable {
    public var stackID: SessionStackID
    public var kind: BlockKind
    public var bytes: UInt64
    public var blocks: UInt64
    public var frames: [FrameRow]
    public var truncated: Bool
    /// Kernel stacks: the task whose allocations these are.
    public var taskPid: Int32?
    public var taskComm: String?
    /// Filled only with `addresses`.
    public var liveBlocks: [LiveBlock]
    /// Other stacks whose symbolized frames equal this one's (a library reloaded at another address),
    /// merged into it: `stackID` is the largest of them.
    public var mergedStackIDs: [SessionStackID] = []
    /// With `--sort growth`: the growth score (bytes/s that look like a leak), as `leakreport growth` ranks.
    public var growth: GrowthScore? = nil
}

/// What one suppression rule took out of a report.
public struct SuppressedTotal: Sendable, Equatable {
    public var rule: String
    public var bytes: UInt64
    public var blocks: UInt64
}

/// The outstanding allocations of a session by stack, largest first: what `leakreport top` prints and
/// what leakcollect summarizes at exit.
public struct TopReport: Sendable {
    public var info: SessionInfo
    /// Over the blocks the filter selects, suppressed ones excluded.
    public var outstandingBytes: UInt64
    public var outstandingBlocks: UInt64
    /// Per rule, in rule order; only rules that matched something.
    public var suppressed: [SuppressedTotal]
    public var counters: [CounterName: UInt64]
    /// Stacks that matched before `top` cut the list.
    public var matchingStacks: Int
    public var stacks: [TopStack]
    public var options: TopOptions

    public var lostEvents: UInt64 { counters[.lostEvents] ?? 0 }

    /// Reads the session and builds the report. Totals cover the blocks the filter selects.
    public static func build(_ reader: SessionReader, options: TopOptions) throws(SessionError) -> TopReport {
        var aggregates = try reader.liveAggregates(options.filter)
        let catalog = try reader.stackCatalog()
        let matcher = options.suppressions.matcher(for: catalog)
        var suppressed: [String: SuppressedTotal] = [:]
        aggregates.removeAll { a in
            guard let rule = matcher.match(a.stackID) else { return false }
            var total = suppressed[rule] ?? SuppressedTotal(rule: rule, bytes: 0, blocks: 0)
            total.bytes &+= a.bytes
            total.blocks &+= a.blocks
            suppressed[rule] = total
            return true
        }
        // Stacks that read the same are one stack to the reader; the largest gives the merged one its id.
        let byKey = Self.sorted(aggregates, options.sort)
        let symbolized = SymbolizedStacks(catalog)
        var groups: [SymbolizedStacks.Key: Int] = [:]
        var merged: [(total: LiveAggregate, members: [SessionStackID])] = []
        for a in byKey {
            let key = symbolized.key(a.stackID, kind: a.kind)
            if let i = groups[key] {
                merged[i].total.bytes &+= a.bytes
                merged[i].total.blocks &+= a.blocks
                merged[i].members.append(a.stackID)
            } else {
                groups[key] = merged.count
                merged.append((a, [a.stackID]))
            }
        }
        var totals = Self.sorted(merged.map(\.total), options.sort)
        let members = Dictionary(uniqueKeysWithValues: merged.map { (LiveAggregateKey(stackID: $0.total.stackID, kind: $0.total.kind), $0.members) })
        var growth: [LiveAggregateKey: GrowthScore] = [:]
        if options.sort == .growth {
            growth = try Self.growthScores(reader, merged: merged)
            // Highest score first; the byte order above breaks ties.
            let rank = Dictionary(uniqueKeysWithValues: totals.enumerated().map { (LiveAggregateKey(stackID: $0.element.stackID, kind: $0.element.kind), $0.offset) })
            func key(_ a: LiveAggregate) -> LiveAggregateKey { LiveAggregateKey(stackID: a.stackID, kind: a.kind) }
            totals.sort { a, b in
                let sa = growth[key(a)]?.score ?? 0, sb = growth[key(b)]?.score ?? 0
                return sa != sb ? sa > sb : (rank[key(a)] ?? 0) < (rank[key(b)] ?? 0)
            }
        }
        let shown = totals.prefix(max(options.top, 0))
        let wanted = shown.flatMap { a in (members[LiveAggregateKey(stackID: a.stackID, kind: a.kind)] ?? []).map { LiveAggregateKey(stackID: $0, kind: a.kind) } }
        let blocks = options.addresses ? try reader.liveBlocks(of: Set(wanted), filter: options.filter) : [:]
        let stacks = shown.map { a in
            let s = catalog.row(a.stackID)
            let ids = members[LiveAggregateKey(stackID: a.stackID, kind: a.kind)] ?? [a.stackID]
            return TopStack(
                stackID: a.stackID, kind: a.kind, bytes: a.bytes, blocks: a.blocks, frames: s?.frames ?? [], truncated: s?.truncated ?? false,
                taskPid: s?.taskPid, taskComm: s?.taskComm, liveBlocks: ids.flatMap { blocks[LiveAggregateKey(stackID: $0, kind: a.kind)] ?? [] },
                mergedStackIDs: Array(ids.dropFirst()), growth: options.sort == .growth ? growth[LiveAggregateKey(stackID: a.stackID, kind: a.kind)] ?? GrowthScore.none : nil)
        }
        return TopReport(
            info: reader.info, outstandingBytes: aggregates.reduce(0) { $0 &+ $1.bytes },
            outstandingBlocks: aggregates.reduce(0) { $0 &+ $1.blocks },
            suppressed: options.suppressions.rules.compactMap { suppressed[$0.name] }, counters: try reader.counters(),
            matchingStacks: totals.count, stacks: stacks, options: options)
    }

    /// Each merged stack's growth score, over its members' series added up.
    static func growthScores(
        _ reader: SessionReader, merged: [(total: LiveAggregate, members: [SessionStackID])]
    ) throws(SessionError) -> [LiveAggregateKey: GrowthScore] {
        let keys = merged.flatMap { m in m.members.map { LiveAggregateKey(stackID: $0, kind: m.total.kind) } }
        let series = StackSeries.series(of: keys, history: try reader.history(), start: reader.info.startMonotonicNs)
        var out: [LiveAggregateKey: GrowthScore] = [:]
        var next = 0
        for m in merged {
            let own = Array(series[next..<next + m.members.count])
            next += m.members.count
            out[LiveAggregateKey(stackID: m.total.stackID, kind: m.total.kind)] = GrowthScore(StackSeries.sum(own))
        }
        return out
    }

    /// Largest first by the sort key, then by the other measure, then by stack id and kind.
    static func sorted(_ aggregates: [LiveAggregate], _ sort: TopSort) -> [LiveAggregate] {
        aggregates.sorted { a, b in
            let (ka, kb) = sort != .count ? (a.bytes, b.bytes) : (a.blocks, b.blocks)
            if ka != kb { return ka > kb }
            let (sa, sb) = sort != .count ? (a.blocks, b.blocks) : (a.bytes, b.bytes)
            if sa != sb { return sa > sb }
            return (a.stackID, a.kind.rawValue) < (b.stackID, b.kind.rawValue)
        }
    }
}
