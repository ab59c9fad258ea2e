import Foundation
import ReportFormats
import SessionStore
import Vocabulary

/// What to read of a session into a `Profile`.
public struct ProfileRequest: Sendable {
    /// nil: every kind.
    public var kinds: Set<BlockKind>?
    public var suppressions: Suppressions
    /// Read the per-interval history into each stack's series (growth, the live view, growth flame graphs).
    public var series: Bool
    /// A longer history is sampled down to this many evenly spaced intervals (the last always kept), so a
    /// day-long session costs no more to rank than a minute-long one.
    public var maxSeriesPoints: Int
    /// Build every stack's frames now; without, stacks start with none and a report that shows only a
    /// few of them names those with `SessionProfile.fillFrames` (131k stacks of 38 frames cost seconds).
    public var frames: Bool

    public init(
        kinds: Set<BlockKind>? = nil, suppressions: Suppressions = Suppressions(), series: Bool = false, maxSeriesPoints: Int = 120,
        frames: Bool = true
    ) {
        self.kinds = kinds
        self.suppressions = suppressions
        self.series = series
        self.maxSeriesPoints = maxSeriesPoints
        self.frames = frames
    }
}

/// A session read into the model every format and analysis of ReportFormats takes: one `ProfileStack`
/// per (stack, kind) the session holds totals for, frames and modules as the symbolizer named them,
/// and beside it what the analyses read that the model has no place for (the collector's own per-stack
/// totals, its peaks, the interval history). The one place a session becomes a profile: every command
/// of `leakreport` but `top`, `oom` and `reclaim` starts here.
public struct SessionProfile {
    /// Outstanding at the end (`inUse*`), ever allocated (`allocated*`), and with `series` the history.
    public var profile: Profile
    public var info: SessionInfo
    public var counters: [CounterName: UInt64]
    /// The collector's totals of each profile stack, index for index.
    public var totals: [TotalRow]
    /// Every interval's end, CLOCK_MONOTONIC, oldest first (read only with `series`).
    public var intervals: [IntervalRow]
    /// Outstanding bytes and blocks the suppressions left out.
    public var suppressedBytes: UInt64
    public var suppressedBlocks: UInt64
    let builder: FrameBuilder

    public var lostEvents: UInt64 { counters[.lostEvents] ?? 0 }

    /// Reads the session's per-stack totals, stacks and modules (and with `series`, its history).
    public static func load(_ reader: SessionReader, _ request: ProfileRequest = ProfileRequest()) throws(SessionError) -> SessionProfile {
        let catalog = try reader.stackCatalog()
        let matcher = request.suppressions.matcher(for: catalog)
        var suppressed: (bytes: UInt64, blocks: UInt64) = (0, 0)
        var totals: [TotalRow] = []
        for t in try reader.totals(kinds: request.kinds) {
            if matcher.match(t.stackID) != nil {
                suppressed.bytes +|= t.bytes
                suppressed.blocks +|= t.blocks
                continue
            }
            totals.append(t)
        }
        // The same order every time: by stack id, then kind.
        totals.sort { ($0.stackID, $0.kind.rawValue) < ($1.stackID, $1.kind.rawValue) }
        let info = reader.info
        let builder = FrameBuilder(catalog: catalog, modules: try reader.modules(), mainPath: info.command.first)
        let pid = info.pid
        var stacks = totals.map { t in
            ProfileStack(
                frames: request.frames ? builder.frames(of: t.stackID) : [], kind: t.kind.rawValue, pid: catalog.stacks[t.stackID]?.taskPid ?? pid, inUseBytes: t.bytes,
                inUseBlocks: t.blocks, allocatedBytes: t.totalBytes, allocatedBlocks: t.totalBlocks)
        }
        var intervals: [IntervalRow] = []
        if request.series {
            let history = try reader.history()
            intervals = history.map(\.interval)
            let keys = totals.map { LiveAggregateKey(stackID: $0.stackID, kind: $0.kind) }
            let series = StackSeries.series(of: keys, history: history, start: info.startMonotonicNs, maxPoints: request.maxSeriesPoints)
            for i in stacks.indices { stacks[i].series = series[i] }
        }
        let sampling = try reader.spaces().compactMap(\.info.samplingIntervalBytes).first
        let asOf = info.asOfNs
        let profile = Profile(
            stacks: stacks, modules: builder.modules, startTimeNs: info.startRealtimeNs,
            durationNs: asOf >= info.startMonotonicNs ? asOf - info.startMonotonicNs : 0, samplingPeriod: sampling)
        return SessionProfile(
            profile: profile, info: info, counters: try reader.counters(), totals: totals, intervals: intervals, suppressedBytes: suppressed.bytes,
            suppressedBlocks: suppressed.blocks, builder: builder)
    }

    /// The frames of the stack at this index, as a load with `frames` gives them.
    public func frames(ofStack index: Int) -> [ProfileFrame] {
        totals.indices.contains(index) ? builder.frames(of: totals[index].stackID) : []
    }

    /// Gives the stacks at these indices their frames (after a load without `frames`).
    public mutating func fillFrames<S: Sequence>(_ indices: S) where S.Element == Int {
        for i in indices where profile.stacks.indices.contains(i) && profile.stacks[i].frames.isEmpty {
            profile.stacks[i].frames = builder.frames(of: totals[i].stackID)
        }
    }

    /// Gives frames to the stacks a top-`top` list by `key` (largest first) can show, ties at the cut included.
    public mutating func fillFrames(top: Int?, by key: (Int) -> UInt64) {
        fillFrames(Self.top(top, of: profile.stacks.count, by: key))
    }

    /// The indices below `count` that a top-`top` list by `key` (largest first) can show, ties at the
    /// cut included; every index when `top` is nil or not below `count`.
    static func top(_ top: Int?, of count: Int, by key: (Int) -> UInt64) -> [Int] {
        let keys = (0..<count).map(key)
        guard let top, top < keys.count else { return Array(0..<count) }
        guard top > 0 else { return [] }
        let cut = keys.sorted(by: >)[top - 1]
        return keys.indices.filter { keys[$0] >= cut && keys[$0] > 0 }
    }

    static func relative(_ t: UInt64, _ start: UInt64) -> UInt64 { t >= start ? t - start : 0 }

    /// Nanoseconds since the session started, of a CLOCK_MONOTONIC stamp.
    public func sinceStart(_ monotonicNs: UInt64) -> UInt64 { Self.relative(monotonicNs, info.startMonotonicNs) }

    /// The profile as it stood at the end of the last interval at or before `offsetNs` after the start
    /// (from the session's interval history, `SessionReader.history()`): what `diff --from/--to` compares.
    public func profile(at offsetNs: UInt64, history: [IntervalHistory]) -> Profile {
        var outstanding: [LiveAggregateKey: (UInt64, UInt64)] = [:]
        for h in history {
            guard sinceStart(h.interval.timeNs) <= offsetNs else { break }
            for pt in h.points { outstanding[LiveAggregateKey(stackID: pt.stackID, kind: pt.kind)] = (pt.bytes, pt.blocks) }
        }
        var p = profile
        p.stacks = []
        for (i, t) in totals.enumerated() {
            guard let (bytes, blocks) = outstanding[LiveAggregateKey(stackID: t.stackID, kind: t.kind)], bytes > 0 || blocks > 0 else { continue }
            var s = profile.stacks[i]
            s.inUseBytes = bytes
            s.inUseBlocks = blocks
            s.allocatedBytes = bytes
            s.allocatedBlocks = blocks
            s.series = []
            p.stacks.append(s)
        }
        p.durationNs = offsetNs
        return p
    }
}

/// Turns the catalog's stored frames into the model's, each location once, and the session's module
/// rows into the model's modules. A catalog that grows (a live view's) is followed with `update`.
final class FrameBuilder {
    private(set) var modules: [ProfileModule] = []
    let catalog: StackCatalog
    /// Per catalog location: its frames in the model.
    private(set) var locations: [[ProfileFrame]] = []
    private var mainName: String?
    private var index: [ModuleKey: Int] = [:]
    /// Per model module: the addresses its frames hold.
    private var ranges: [(lo: UInt64, hi: UInt64)] = []

    private struct ModuleKey: Hashable {
        var path: String
        var buildID: String?
        /// Where file offset 0 would lie in the process (nil where the frame has no file offset: the kernel).
        var base: UInt64?
    }

    init(catalog: StackCatalog, modules rows: [ModuleRow], mainPath: String?) {
        self.catalog = catalog
        update(modules: rows, mainPath: mainPath)
    }

    /// Takes in the locations the catalog gained since the last call, and spans the modules again.
    func update(modules rows: [ModuleRow], mainPath: String?) {
        mainName = mainPath.map(FrameNames.basename)
        locations += catalog.locationFrames[locations.count...].map { frames in
            frames.map { f in
                var module: Int?
                if let path = f.module {
                    let base = f.fileOffset.map { f.address &- $0 }
                    let key = ModuleKey(path: path, buildID: f.buildID, base: base)
                    if let i = index[key] {
                        module = i
                        ranges[i] = (min(ranges[i].lo, f.address), max(ranges[i].hi, f.address &+ 1))
                    } else {
                        module = modules.count
                        index[key] = modules.count
                        ranges.append((f.address, f.address &+ 1))
                        modules.append(ProfileModule(path: path, buildID: f.buildID, start: 0, limit: 0, isMainBinary: false))
                    }
                }
                return ProfileFrame(
                    address: f.address, function: f.function, systemName: f.systemName, offset: f.offset, file: f.file, line: f.line,
                    inlined: f.inlined, module: module)
            }
        }
        // Each module spans the session's mapping of it where a module row covers its addresses, else
        // the addresses its frames hold; the file offset of its start keeps every frame's own.
        for (key, i) in index {
            var lo = ranges[i].lo, hi = ranges[i].hi
            if let row = rows.first(where: { $0.path == key.path && $0.lo <= lo && hi <= $0.hi && $0.hi > $0.lo }) {
                lo = row.lo
                hi = row.hi
            }
            modules[i].start = lo
            modules[i].limit = hi
            modules[i].fileOffset = key.base.map { lo &- $0 } ?? 0
            modules[i].isMainBinary = mainName != nil && FrameNames.basename(key.path) == mainName
        }
    }

    /// A stack's frames, innermost first.
    func frames(of id: SessionStackID) -> [ProfileFrame] {
        guard let s = catalog.stacks[id] else { return [] }
        // Exactly as many as it holds: appending grows an array by doubling, and at 131k stacks of 38
        // frames the spare capacity was hundreds of megabytes.
        var count = 0
        var node = Int(s.leaf)
        while node != 0 {
            count += locations[Int(catalog.nodeLocations[node])].count
            node = Int(catalog.parents[node])
        }
        var out: [ProfileFrame] = []
        out.reserveCapacity(count)
        node = Int(s.leaf)
        while node != 0 {
            out += locations[Int(catalog.nodeLocations[node])]
            node = Int(catalog.parents[node])
        }
        return out
    }
}
