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
    /// How many intervals the last read found (0: the collector wrote nothing since).
    public private(set) var intervalsRead = 0

    public var path: String { follower.reader.path }

    private let follower: SessionFollower
    private let request: ProfileRequest
    /// A screen shows a few dozen stacks: the first `named` rows of each order a key can choose are
    /// named, so a re-sort before the next refresh still has names.
    private let named: Int
    private let matcher: Suppressions.Matcher
    private var builder: FrameBuilder?
    private var history = StackHistory()
    private var totalSeries: [UInt64] = []
    private var lastInterval: IntervalRow?

    /// Every (stack, kind) of the admitted kinds the session holds, in the order first met.
    private var entries: [Entry] = []
    private var slotOf = StackKeySlots()
    /// Entry slots by stack id then kind: the profile's order.
    private var order: [Int] = []
    /// Entries whose stack the catalog did not hold yet (never, from the collector: a stack is written
    /// with the totals that first name it): decided again at each refresh.
    private var undecided: [Int] = []

    /// What the last model was built from, kept so that a refresh redoes only what changed: the
    /// profile's stacks (the unsuppressed entries in `order`), their growth scores, and which were named.
    private var shown: [Int] = []
    private var stacks: [ProfileStack] = []
    private var growth: [Double] = []
    /// Per stack: its score is 0 and stays 0 while its series only repeats its last value (no growth
    /// since its first level, or none since it last grew for longer than it grew): not scored again then.
    private var growthSettled: [Bool] = []
    private var namedRows: Set<Int> = []
    /// An entry's place or suppression changed since the last build: `shown` must be laid out again.
    private var layoutChanged = true
    /// Entries added since the last build after every other (new stacks): appended to `shown`.
    private var appended: [Int] = []
    /// Entries whose figures changed since the last build.
    private var changed: [Int] = []
    /// The history's length when the series were last sampled (every series moves with a new interval).
    private var sampledAt = -1
    /// The model's rows, kept in order: a refresh merges in only the stacks it changed.
    private var rows = LiveView.SortedRows()

    private struct Entry {
        let key: LiveAggregateKey
        var bytes: UInt64 = 0
        var blocks: UInt64 = 0
        var suppressed = false
        var pid: Int32?
        /// Where the history keeps its changes (nil until an interval names it).
        var historySlot: Int?
        /// Built once, when first named: a stack's frames never change.
        var frames: [ProfileFrame]?
        /// Its index in `shown`, when shown.
        var position: Int?

        init(key: LiveAggregateKey) { self.key = key }
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
        intervalsRead = delta.intervals.count
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
        var added: [Int] = []
        func set(_ key: LiveAggregateKey, _ bytes: UInt64, _ blocks: UInt64) {
            let (slot, isNew) = slotOf.slot(of: key)
            if isNew {
                entries.append(Entry(key: key))
                added.append(slot)
            }
            entries[slot].bytes = bytes
            entries[slot].blocks = blocks
            changed.append(slot)
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
        let firstAdded = entries.count - added.count
        undecided += added
        undecided.removeAll { slot in
            let id = entries[slot].key.stackID
            guard let stack = catalog.stacks[id] else { return false }
            entries[slot].suppressed = matcher.match(stack) != nil
            entries[slot].pid = stack.taskPid
            entries[slot].frames = nil
            // An entry shown before whose stack arrived only now moves or goes.
            if slot < firstAdded { layoutChanged = true }
            return true
        }
        if !added.isEmpty {
            // New stacks have the highest ids: appending keeps the order, except for a new kind of an old stack.
            added.sort { Self.order(entries[$0].key, entries[$1].key) }
            let inOrder = order.last.map { Self.order(entries[$0].key, entries[added[0]].key) } ?? true
            order += added
            if inOrder {
                appended += added
            } else {
                order.sort { Self.order(entries[$0].key, entries[$1].key) }
                layoutChanged = true
            }
        }
    }

    private static func order(_ a: LiveAggregateKey, _ b: LiveAggregateKey) -> Bool {
        (a.stackID, a.kind.rawValue) < (b.stackID, b.kind.rawValue)
    }

    private func build(_ delta: SessionFollower.Delta, sort: LiveView.Sort) {
        let info = delta.info
        // The model's copy of the stacks goes first, so they are changed in place rather than copied.
        model.profile.stacks = []
        // The stacks whose row may differ from the last build's (all of them when `everyRow`).
        var moved: [Int] = []
        var everyRow = layoutChanged
        if layoutChanged {
            layoutChanged = false
            for slot in shown { entries[slot].position = nil }
            shown = order.filter { !entries[$0].suppressed }
            stacks = shown.enumerated().map { i, slot in
                entries[slot].position = i
                let e = entries[slot]
                return ProfileStack(frames: [], kind: e.key.kind.rawValue, pid: e.pid ?? info.pid, inUseBytes: e.bytes, inUseBlocks: e.blocks)
            }
            namedRows = []
            sampledAt = -1
        } else {
            for slot in appended where !entries[slot].suppressed {
                entries[slot].position = stacks.count
                moved.append(stacks.count)
                shown.append(slot)
                let e = entries[slot]
                stacks.append(ProfileStack(frames: [], kind: e.key.kind.rawValue, pid: e.pid ?? info.pid, inUseBytes: e.bytes, inUseBlocks: e.blocks))
            }
            for slot in changed {
                guard let i = entries[slot].position else { continue }
                moved.append(i)
                // The live view reads no per-stack totals but the outstanding ones: allocated is the same.
                stacks[i].inUseBytes = entries[slot].bytes
                stacks[i].inUseBlocks = entries[slot].blocks
                stacks[i].allocatedBytes = entries[slot].bytes
                stacks[i].allocatedBlocks = entries[slot].blocks
            }
        }
        changed.removeAll()
        // Stacks appended just now are scored with the rest below (they came with a new interval; should
        // one come without, everything is sampled again).
        if growth.count < stacks.count {
            if sampledAt == history.times.count { sampledAt = -1 }
            growth += [Double](repeating: 0, count: stacks.count - growth.count)
            growthSettled += [Bool](repeating: false, count: stacks.count - growthSettled.count)
        }
        appended.removeAll()
        // A new interval moves every series (a point more, or sampled anew): all are scored again. While
        // every interval is kept, a stack no new interval named just repeats its last value.
        let n = history.times.count
        if sampledAt != n {
            let sampled = history.sampledIntervals(maxPoints: request.maxSeriesPoints)
            let start = info.startMonotonicNs
            let extendable = sampledAt >= 0 && n <= max(2, request.maxSeriesPoints)
            let times = history.times[max(sampledAt, 0)...].map { $0 >= start ? $0 - start : 0 }
            if !extendable {
                growth = [Double](repeating: 0, count: stacks.count)
                everyRow = true
                growthSettled = [Bool](repeating: false, count: stacks.count)
            }
            Self.scoreGrowth(
                shown: shown, entries: &entries, stacks: &stacks, growth: &growth, settled: &growthSettled, moved: &moved, history: history,
                extendingFrom: extendable ? sampledAt : nil, times: times, start: start, sampled: sampled)
            sampledAt = n
        }
        let names: Set<Int> = {
            // Copies that end here, so the stacks are still changed in place below.
            let stacks = self.stacks, growth = self.growth
            var names = Self.first(named, of: stacks) { stacks[$0].inUseBytes }
            names.formUnion(Self.first(named, of: stacks) { stacks[$0].inUseBlocks })
            names.formUnion(Self.first(named, of: stacks) { growth[$0] })
            return names
        }()
        for i in namedRows.subtracting(names) { stacks[i].frames = [] }
        for i in names.subtracting(namedRows) {
            let slot = shown[i]
            if entries[slot].frames == nil { entries[slot].frames = builder?.frames(of: entries[slot].key.stackID) }
            stacks[i].frames = entries[slot].frames ?? []
        }
        namedRows = names
        rows.update(stacks, growth: growth, changed: moved, sort: sort, everything: everyRow)
        let asOf = info.asOfNs
        let profile = Profile(
            stacks: stacks, modules: builder?.modules ?? [], startTimeNs: info.startRealtimeNs,
            durationNs: asOf >= info.startMonotonicNs ? asOf - info.startMonotonicNs : 0,
            samplingPeriod: delta.spaces.compactMap(\.info.samplingIntervalBytes).first)
        var m = LiveView.Model(
            profile: profile, pid: info.pid ?? 0, command: info.command.joined(separator: " "), rssBytes: lastInterval?.rssBytes,
            lostEvents: delta.counters[.lostEvents] ?? 0, elapsedNs: profile.durationNs, peakBytes: delta.peaks[.all]?.bytes,
            totalSeries: totalSeries, sort: sort, growth: growth, rows: rows)
        m.outstandingBytes = stacks.reduce(UInt64(0)) { $0 &+ $1.inUseBytes }
        // While it runs, the clock runs: the time since the start, not since the last flush.
        if info.end == nil { m.elapsedNs = SessionProfile.relative(monotonicNow(), info.startMonotonicNs) }
        model = m
        finished = info.end != nil || Self.abandoned(info)
        intervalNs = UInt64(max(info.intervalMs, 10)) * 1_000_000
    }

    /// Brings every shown stack's series up to the history and scores its growth again, appending to
    /// `moved` the stacks whose score changed. `extendingFrom`: the history's length when the series were
    /// last sampled, when they can be extended from there (every interval is kept); nil: sampled anew.
    /// The arrays come in `inout`, so 131k series grow in place without an exclusivity check per access.
    private static func scoreGrowth(
        shown: [Int], entries: inout [Entry], stacks: inout [ProfileStack], growth: inout [Double], settled: inout [Bool], moved: inout [Int],
        history: StackHistory, extendingFrom sampledAt: Int?, times: [UInt64], start: UInt64, sampled: [Int]
    ) {
        for (i, slot) in shown.enumerated() {
            if entries[slot].historySlot == nil { entries[slot].historySlot = history.slot(of: entries[slot].key) }
            guard let h = entries[slot].historySlot else { continue }
            if let sampledAt, let last = stacks[i].series.last, history.lastChange(slot: h) < sampledAt {
                for t in times where stacks[i].series.last?.timeNs != t { stacks[i].series.append(SeriesPoint(timeNs: t, bytes: last.bytes)) }
                // Repeating the last value keeps the retained level, where growth started and
                // ended, and only lengthens the time since: a score of 0 for those reasons stays 0.
                if settled[i] { continue }
            } else {
                stacks[i].series = history.series(slot: h, start: start, sampled: sampled)
            }
            let score = GrowthScore(stacks[i].series)
            if growth[i] != score.score { moved.append(i) }
            growth[i] = score.score
            settled[i] = score == GrowthScore.none || (score.score == 0 && score.recency == 0)
        }
    }

    /// The first `k` of the view's rows (the stacks with outstanding memory) in the order of `key`,
    /// largest first and ties by index, as `LiveView.Model` sorts them. A bounded heap whose root is the
    /// last row kept, so 131k rows cost no sort.
    private static func first<K: Comparable>(_ k: Int, of stacks: [ProfileStack], by key: (Int) -> K) -> Set<Int> {
        guard k > 0 else { return [] }
        // a comes after b in the view's order.
        func after(_ a: (K, Int), _ b: (K, Int)) -> Bool { a.0 != b.0 ? a.0 < b.0 : a.1 > b.1 }
        var heap: [(K, Int)] = []
        heap.reserveCapacity(k)
        for i in stacks.indices where stacks[i].inUseBytes > 0 || stacks[i].inUseBlocks > 0 {
            let e = (key(i), i)
            var at: Int
            if heap.count < k {
                heap.append(e)
                at = heap.count - 1
                while at > 0, after(heap[at], heap[(at - 1) / 2]) {
                    heap.swapAt(at, (at - 1) / 2)
                    at = (at - 1) / 2
                }
                continue
            }
            guard after(heap[0], e) else { continue }
            heap[0] = e
            at = 0
            while true {
                var last = at
                for c in [2 * at + 1, 2 * at + 2] where c < heap.count && after(heap[c], heap[last]) { last = c }
                if last == at { break }
                heap.swapAt(at, last)
                at = last
            }
        }
        return Set(heap.map(\.1))
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
