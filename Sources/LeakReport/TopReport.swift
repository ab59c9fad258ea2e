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
    /// Walked through frame pointers past code that may not keep them (BPF-only mode): callers may be
    /// missing.
    public var mayBeIncomplete: Bool = false
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
    /// The process whose allocations these are (user stacks).
    public var pid: Int32?
}

/// One traced process of a session: its images (one per exec) and what it left outstanding.
public struct ProcessTotal: Sendable, Equatable {
    public var pid: Int32
    /// The process it was forked from, when that one was followed too.
    public var parentPid: Int32?
    /// Its images in order, each with how it ended (`exec`, `exited`, `detached`; nil while running).
    public var images: [(command: [String], end: SpaceEnd?)]
    public var bytes: UInt64
    public var blocks: UInt64

    public static func == (a: ProcessTotal, b: ProcessTotal) -> Bool {
        a.pid == b.pid && a.parentPid == b.parentPid && a.bytes == b.bytes && a.blocks == b.blocks
            && a.images.map(\.command) == b.images.map(\.command) && a.images.map(\.end) == b.images.map(\.end)
    }
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
    /// Every user process of the session (one per pid), in the order they were first traced, with its
    /// outstanding totals over what the report counts.
    public var processes: [ProcessTotal] = []
    /// The sampling interval, when allocations were sampled: the figures are then estimates.
    public var samplingIntervalBytes: UInt64?

    public var lostEvents: UInt64 { counters[.lostEvents] ?? 0 }

    /// Reads the session and builds the report. Totals cover the blocks the filter selects.
    public static func build(_ reader: SessionReader, options: TopOptions) throws(SessionError) -> TopReport {
        var aggregates = try reader.liveAggregates(options.filter)
        let catalog = try reader.stackCatalog()
        let spaces = try reader.spaces()
        var pidOfSpace: [SpaceID: Int32] = [:]
        for s in spaces where s.info.kind == .user { if let p = s.info.pid { pidOfSpace[s.id] = p } }
        func pid(of stack: SessionStackID) -> Int32? { catalog.stacks[stack].flatMap { pidOfSpace[$0.space] } }
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
        let symbolized = SymbolizedStacks(catalog, pids: pidOfSpace)
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
                mayBeIncomplete: s?.mayBeIncomplete ?? false, taskPid: s?.taskPid, taskComm: s?.taskComm,
                liveBlocks: ids.flatMap { blocks[LiveAggregateKey(stackID: $0, kind: a.kind)] ?? [] }, mergedStackIDs: Array(ids.dropFirst()),
                growth: options.sort == .growth ? growth[LiveAggregateKey(stackID: a.stackID, kind: a.kind)] ?? GrowthScore.none : nil,
                pid: pid(of: a.stackID))
        }
        var report = TopReport(
            info: reader.info, outstandingBytes: aggregates.reduce(0) { $0 &+ $1.bytes },
            outstandingBlocks: aggregates.reduce(0) { $0 &+ $1.blocks },
            suppressed: options.suppressions.rules.compactMap { suppressed[$0.name] }, counters: try reader.counters(),
            matchingStacks: totals.count, stacks: stacks, options: options)
        report.processes = Self.processes(spaces, aggregates, pid: pid(of:))
        report.samplingIntervalBytes = spaces.compactMap(\.info.samplingIntervalBytes).max()
        return report
    }

    /// Per process (pid), its images and outstanding totals; a process only a `--pid` filter left out
    /// still appears, with nothing outstanding.
    static func processes(_ spaces: [SpaceRow], _ aggregates: [LiveAggregate], pid: (SessionStackID) -> Int32?) -> [ProcessTotal] {
        var order: [Int32] = []
        var byPid: [Int32: ProcessTotal] = [:]
        var spacePid: [SpaceID: Int32] = [:]
        for s in spaces where s.info.kind == .user {
            guard let p = s.info.pid else { continue }
            spacePid[s.id] = p
            if byPid[p] == nil {
                order.append(p)
                byPid[p] = ProcessTotal(pid: p, parentPid: s.info.parent.flatMap { spacePid[$0] }.flatMap { $0 == p ? nil : $0 }, images: [], bytes: 0, blocks: 0)
            }
            byPid[p]?.images.append((s.info.command, s.end))
        }
        for a in aggregates {
            guard let p = pid(a.stackID) else { continue }
            byPid[p]?.bytes &+= a.bytes
            byPid[p]?.blocks &+= a.blocks
        }
        // The launched process first, then in the order they started.
        let started = Dictionary(spaces.map { ($0.id, $0.info.startNs) }, uniquingKeysWith: min)
        var firstStart: [Int32: UInt64] = [:]
        for s in spaces { if let p = s.info.pid, firstStart[p] == nil { firstStart[p] = started[s.id] } }
        let root = order.first
        return order.sorted { a, b in
            if a == root || b == root { return a == root && b != root }
            return (firstStart[a] ?? 0, a) < (firstStart[b] ?? 0, b)
        }.compactMap { byPid[$0] }
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
