import Foundation
import ReportFormats
import SessionStore
import Vocabulary

/// What the live view shows of a session a running collector writes. `read` takes in the whole session;
/// each `refresh` then reads only what the collector added since (the catalog's new stacks, the new
/// intervals with the stacks that changed in them, the small tables) and keeps what it holds: the
/// catalog, the history, the stacks' figures and the frames it already named. Either way the model is
/// the one a fresh read of the session as it stands would give.
public final class LiveSession {
    public private(set) var model: LiveView.Model
    /// The collection has ended (the session says how), or its collector is gone.
    public private(set) var finished = false
    /// How often the collector flushes, for the view's refresh.
    public private(set) var intervalNs: UInt64 = 1_000_000_000
    /// How long the last read (the first or a refresh), model included, took.
    public private(set) var loadNs: UInt64 = 0

    private let follower: SessionFollower
    private let request: ProfileRequest
    /// A screen shows a few dozen stacks: the first `named` by each order a key can choose are named, so
    /// a re-sort before the next refresh still has names.
    private let named: Int
    private let matcher: Suppressions.Matcher
    private var builder: FrameBuilder?
    private var history = StackHistory()
    /// Every (stack, kind) of the admitted kinds the session holds, by stack id then kind: the profile's order.
    private var keys: [LiveAggregateKey] = []
    private var entries: [LiveAggregateKey: Entry] = [:]
    /// Keys whose stack the catalog did not hold yet (never, from the collector: a stack is written with
    /// the totals that first name it): decided again at each refresh.
    private var undecided: Set<LiveAggregateKey> = []
    private var totalSeries: [UInt64] = []
    private var lastInterval: IntervalRow?

    private struct Entry {
        var bytes: UInt64 = 0
        var blocks: UInt64 = 0
        var suppressed = false
        /// Built once, when first named: a stack's frames never change.
        var frames: [ProfileFrame]?
    }

    private init(follower: SessionFollower, request: ProfileRequest, named: Int) {
        self.follower = follower
        var request = request
        request.series = true
        request.frames = false
        self.request = request
        self.named = named
        matcher = request.suppressions.matcher(for: follower.catalog)
        model = LiveView.Model(profile: Profile(stacks: []), pid: 0, command: "", rssBytes: nil, lostEvents: 0, elapsedNs: 0)
    }

    /// Reads the session at `path` into the live view's model (stacks, their series, the header's facts).
    public static func read(_ path: String, request: ProfileRequest, sort: LiveView.Sort, named: Int = 300) throws(SessionError) -> LiveSession {
        let live = LiveSession(follower: try SessionFollower(path: path), request: request, named: named)
        try live.refresh(sort: sort)
        return live
    }

    /// Reads what the collector wrote since the last read and rebuilds the model. A failed read (the
    /// collector mid-write, a damaged row) changes nothing.
    public func refresh(sort: LiveView.Sort) throws(SessionError) {
        let started = DispatchTime.now().uptimeNanoseconds
        let delta = try follower.next()
        apply(delta)
        build(delta, sort: sort)
        loadNs = DispatchTime.now().uptimeNanoseconds - started
    }

    private func admits(_ kind: BlockKind) -> Bool { request.kinds?.contains(kind) ?? true }

    private func apply(_ delta: SessionFollower.Delta) {
        let catalog = follower.catalog
        if let b = builder {
            b.update(modules: delta.modules, mainPath: delta.info.command.first)
        } else {
            builder = FrameBuilder(catalog: catalog, modules: delta.modules, mainPath: delta.info.command.first)
        }
        var added: [LiveAggregateKey] = []
        func set(_ key: LiveAggregateKey, _ bytes: UInt64, _ blocks: UInt64) {
            if entries[key] == nil {
                entries[key] = Entry()
                added.append(key)
            }
            entries[key]?.bytes = bytes
            entries[key]?.blocks = blocks
        }
        // The first read takes the stacks' figures from their totals; later ones from the intervals
        // since, each of which holds the new totals of every stack that changed in it.
        for t in delta.totals ?? [] where admits(t.kind) { set(LiveAggregateKey(stackID: t.stackID, kind: t.kind), t.bytes, t.blocks) }
        for h in delta.intervals {
            history.append(h)
            if delta.totals == nil {
                for p in h.points where admits(p.kind) { set(LiveAggregateKey(stackID: p.stackID, kind: p.kind), p.bytes, p.blocks) }
            }
            // Total outstanding per interval, from the interval rows (every kind the view shows).
            totalSeries.append(h.interval.outstanding.reduce(UInt64(0)) { sum, e in admits(e.key) ? sum &+ e.value.bytes : sum })
            lastInterval = h.interval
        }
        undecided.formUnion(added)
        for key in undecided where catalog.stacks[key.stackID] != nil {
            entries[key]?.suppressed = matcher.match(key.stackID) != nil
            entries[key]?.frames = nil
            undecided.remove(key)
        }
        if !added.isEmpty {
            // New stacks have the highest ids: appending keeps the order, except for a new kind of an old stack.
            added.sort(by: Self.order)
            let inOrder = keys.last.map { Self.order($0, added[0]) } ?? true
            keys += added
            if !inOrder { keys.sort(by: Self.order) }
        }
    }

    private static func order(_ a: LiveAggregateKey, _ b: LiveAggregateKey) -> Bool {
        (a.stackID, a.kind.rawValue) < (b.stackID, b.kind.rawValue)
    }

    private func build(_ delta: SessionFollower.Delta, sort: LiveView.Sort) {
        let info = delta.info, catalog = follower.catalog
        let sampled = history.sampledIntervals(maxPoints: request.maxSeriesPoints)
        var shown: [LiveAggregateKey] = []
        var stacks: [ProfileStack] = []
        shown.reserveCapacity(keys.count)
        stacks.reserveCapacity(keys.count)
        for key in keys {
            guard let e = entries[key], !e.suppressed else { continue }
            shown.append(key)
            stacks.append(
                ProfileStack(
                    frames: [], kind: key.kind.rawValue, pid: catalog.stacks[key.stackID]?.taskPid ?? info.pid, inUseBytes: e.bytes,
                    inUseBlocks: e.blocks, series: history.series(of: key, start: info.startMonotonicNs, sampled: sampled)))
        }
        let growth = stacks.map { GrowthScore($0.series).score }
        var names = Set(SessionProfile.top(named, of: stacks.count) { stacks[$0].inUseBytes })
        names.formUnion(SessionProfile.top(named, of: stacks.count) { stacks[$0].inUseBlocks })
        names.formUnion(SessionProfile.top(named, of: stacks.count) { UInt64(max(0, min(growth[$0], 1e18))) })
        for i in names {
            let key = shown[i]
            if entries[key]?.frames == nil { entries[key]?.frames = builder?.frames(of: key.stackID) }
            stacks[i].frames = entries[key]?.frames ?? []
        }
        let asOf = info.asOfNs
        let profile = Profile(
            stacks: stacks, modules: builder?.modules ?? [], startTimeNs: info.startRealtimeNs,
            durationNs: asOf >= info.startMonotonicNs ? asOf - info.startMonotonicNs : 0,
            samplingPeriod: delta.spaces.compactMap(\.info.samplingIntervalBytes).first)
        var m = LiveView.Model(
            profile: profile, pid: info.pid ?? 0, command: info.command.joined(separator: " "), rssBytes: lastInterval?.rssBytes,
            lostEvents: delta.counters[.lostEvents] ?? 0, elapsedNs: profile.durationNs, peakBytes: delta.peaks[.all]?.bytes,
            totalSeries: totalSeries, sort: sort)
        m.outstandingBytes = stacks.reduce(UInt64(0)) { $0 &+ $1.inUseBytes }
        // While it runs, the clock runs: the time since the start, not since the last flush.
        if info.end == nil { m.elapsedNs = SessionProfile.relative(Self.monotonicNow(), info.startMonotonicNs) }
        model = m
        finished = info.end != nil || Self.abandoned(info)
        intervalNs = UInt64(max(info.intervalMs, 10)) * 1_000_000
    }

    static func monotonicNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// A session without an end whose process is gone and whose collector stopped flushing: its
    /// collector died, so nothing more will come.
    static func abandoned(_ info: SessionInfo) -> Bool {
        guard let pid = info.pid, kill(pid, 0) != 0, errno == ESRCH else { return false }
        let nowNs = monotonicNow()
        let last = info.lastFlushNs ?? info.startMonotonicNs
        return nowNs > last && nowNs - last > max(3 * UInt64(max(info.intervalMs, 10)) * 1_000_000, 2_000_000_000)
    }
}
