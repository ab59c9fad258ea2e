import Vocabulary
import GRDB

/// One address space as the session stores it: a process image (or the kernel), and how it ended.
public struct SpaceRow: Sendable, Equatable {
    public var id: SpaceID
    public var info: SpaceInfo
    /// CLOCK_MONOTONIC when the image ended (exit, exec, detach); nil while it runs.
    public var endNs: UInt64?
    public var end: SpaceEnd?

    public init(id: SpaceID, info: SpaceInfo, endNs: UInt64? = nil, end: SpaceEnd? = nil) {
        self.id = id
        self.info = info
        self.endNs = endNs
        self.end = end
    }
}

/// How one address space stopped being traced.
public enum SpaceEnd: String, Sendable, Codable {
    /// The process exited (or was killed); the session's end says how, for the launched one.
    case exited
    /// The image was replaced by an exec: a new space of the same pid follows.
    case exec
    /// The collector stopped following it (detach, --duration, Ctrl-C).
    case detached
}

/// A loaded object as stored in `modules`.
public struct ModuleRow: Sendable, Equatable {
    public var id: Int64
    public var space: SpaceID
    public var path: String
    /// Lower-case hex, or empty.
    public var buildID: String
    public var bias: UInt64
    public var lo: UInt64
    public var hi: UInt64
    public var loadedNs: UInt64
    public var unloadedNs: UInt64?

    public init(
        id: Int64, space: SpaceID = 1, path: String, buildID: String, bias: UInt64, lo: UInt64, hi: UInt64, loadedNs: UInt64,
        unloadedNs: UInt64? = nil
    ) {
        self.id = id
        self.space = space
        self.path = path
        self.buildID = buildID
        self.bias = bias
        self.lo = lo
        self.hi = hi
        self.loadedNs = loadedNs
        self.unloadedNs = unloadedNs
    }
}

/// Where a stack's frames come from.
public enum StackOrigin: String, Sendable, Codable {
    case user, kernel
}

/// One symbolized frame. `address` is a return address; file and line belong to `address - 1`. An
/// inlined call is a frame of its own with the same address, `inlined` set, placed before (inside) the
/// frame of the function it was inlined into, which keeps the line of the call site.
public struct FrameRow: Sendable, Equatable, Hashable, Codable {
    public var address: UInt64
    /// Demangled name.
    public var function: String?
    /// The symbol as the binary spells it (mangled), when it differs from `function`.
    public var systemName: String?
    /// Bytes from the start of `function` to `address`.
    public var offset: UInt64?
    /// The module's path (user space) or the kernel module's name ("kernel" for the core kernel).
    public var module: String?
    /// The module's GNU build-id, lower-case hex.
    public var buildID: String?
    /// `address` as an offset into the module's file, so the frame can be symbolized later elsewhere.
    public var fileOffset: UInt64?
    public var file: String?
    public var line: Int?
    public var inlined: Bool

    /// The module name of code outside every loaded object that a JIT compiled (anonymous executable
    /// memory), named through the process's perf map when it has one.
    public static let jitModule = "[jit]"

    public init(
        address: UInt64, function: String? = nil, systemName: String? = nil, offset: UInt64? = nil, module: String? = nil,
        buildID: String? = nil, fileOffset: UInt64? = nil, file: String? = nil, line: Int? = nil, inlined: Bool = false
    ) {
        self.address = address
        self.function = function
        self.systemName = systemName
        self.offset = offset
        self.module = module
        self.buildID = buildID
        self.fileOffset = fileOffset
        self.file = file
        self.line = line
        self.inlined = inlined
    }
}

/// A stack and its symbolized frames, innermost first.
public struct StackRow: Sendable, Equatable {
    public var id: SessionStackID
    public var space: SpaceID
    public var origin: StackOrigin
    public var truncated: Bool
    /// The unwinder may have stopped early (frame pointers missing somewhere).
    public var mayBeIncomplete: Bool
    /// Kernel stacks: the task whose allocations these are.
    public var taskPid: Int32?
    public var taskComm: String?
    public var frames: [FrameRow]

    public init(
        id: SessionStackID, space: SpaceID = 1, origin: StackOrigin, truncated: Bool, mayBeIncomplete: Bool = false,
        taskPid: Int32? = nil, taskComm: String? = nil, frames: [FrameRow]
    ) {
        self.id = id
        self.space = space
        self.origin = origin
        self.truncated = truncated
        self.mayBeIncomplete = mayBeIncomplete
        self.taskPid = taskPid
        self.taskComm = taskComm
        self.frames = frames
    }
}

/// How long freed blocks lived, in buckets with 1-2-5 bounds from 1 ms to 1000 s, so the common
/// thresholds (1 ms, 10 ms, 100 ms, 1 s, …) are exact. Bucket i holds lifetimes below `bounds[i]` and at
/// least `bounds[i-1]`; the last bucket holds the rest.
public struct LifetimeHistogram: Sendable, Equatable {
    public static let boundsNs: [UInt64] = {
        var b: [UInt64] = []
        var decade: UInt64 = 1_000_000
        while decade <= 1_000_000_000_000 {
            for m in [1, 2, 5] as [UInt64] where decade * m <= 1_000_000_000_000 { b.append(decade * m) }
            decade *= 10
        }
        return b
    }()
    /// `boundsNs.count + 1`, as a constant: the tracker asks on every free, and a static computed from
    /// the lazily built bounds costs a once-check each time. A test keeps the two in step.
    public static let bucketCount = 20

    public var counts: [UInt64]
    public var bytes: [UInt64]

    public init() {
        counts = Array(repeating: 0, count: Self.bucketCount)
        bytes = Array(repeating: 0, count: Self.bucketCount)
    }

    public static func bucket(lifetimeNs: UInt64) -> Int {
        // Most freed blocks lived under a millisecond: no search (and no lazy-global check) for them.
        if lifetimeNs < 1_000_000 { return 0 }
        var lo = 0, hi = boundsNs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if boundsNs[mid] <= lifetimeNs { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    public mutating func add(lifetimeNs: UInt64, bytes b: UInt64, count: UInt64 = 1) {
        let i = Self.bucket(lifetimeNs: lifetimeNs)
        counts[i] &+= count
        bytes[i] &+= b
    }

    /// Blocks and bytes freed after living less than `ns`, which must be a bucket bound (or 0).
    public func shorterThan(_ ns: UInt64) -> (blocks: UInt64, bytes: UInt64) {
        var n: UInt64 = 0, b: UInt64 = 0
        for (i, bound) in Self.boundsNs.enumerated() where bound <= ns {
            n &+= counts[i]
            b &+= bytes[i]
        }
        return (n, b)
    }

    public var isEmpty: Bool { counts.allSatisfy { $0 == 0 } }
}

/// Per stack and kind: what is outstanding, what was ever allocated and freed, temporaries, lifetimes,
/// and what the stack held at the peaks.
public struct TotalRow: Sendable, Equatable {
    public var stackID: SessionStackID
    public var kind: BlockKind
    public var bytes: UInt64
    public var blocks: UInt64
    public var totalBytes: UInt64
    public var totalBlocks: UInt64
    /// heaptrack's temporary allocations: freed before the same thread allocated again.
    public var temporaryBlocks: UInt64
    public var temporaryBytes: UInt64
    /// What this stack held at the session's peak of its own kind, and at the peak over every kind, if
    /// `peakEpoch`/`allPeakEpoch` equals the session's (see `PeakRow`); otherwise it still holds `bytes`.
    public var peakBytes: UInt64
    public var peakBlocks: UInt64
    public var peakEpoch: UInt64
    public var allPeakBytes: UInt64
    public var allPeakBlocks: UInt64
    public var allPeakEpoch: UInt64
    public var lifetimes: LifetimeHistogram?

    public init(
        stackID: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64, totalBytes: UInt64, totalBlocks: UInt64,
        temporaryBlocks: UInt64 = 0, temporaryBytes: UInt64 = 0, peakBytes: UInt64 = 0, peakBlocks: UInt64 = 0, peakEpoch: UInt64 = 0,
        allPeakBytes: UInt64 = 0, allPeakBlocks: UInt64 = 0, allPeakEpoch: UInt64 = 0, lifetimes: LifetimeHistogram? = nil
    ) {
        self.stackID = stackID
        self.kind = kind
        self.bytes = bytes
        self.blocks = blocks
        self.totalBytes = totalBytes
        self.totalBlocks = totalBlocks
        self.temporaryBlocks = temporaryBlocks
        self.temporaryBytes = temporaryBytes
        self.peakBytes = peakBytes
        self.peakBlocks = peakBlocks
        self.peakEpoch = peakEpoch
        self.allPeakBytes = allPeakBytes
        self.allPeakBlocks = allPeakBlocks
        self.allPeakEpoch = allPeakEpoch
        self.lifetimes = lifetimes
    }

    /// Bytes and blocks this stack held at a peak whose epoch is `epoch`.
    public func atPeak(of dimension: PeakDimension, epoch: UInt64) -> (bytes: UInt64, blocks: UInt64) {
        switch dimension {
        case .all: return allPeakEpoch == epoch ? (allPeakBytes, allPeakBlocks) : (bytes, blocks)
        case .kind: return peakEpoch == epoch ? (peakBytes, peakBlocks) : (bytes, blocks)
        }
    }
}

/// Which total a peak is of.
public enum PeakDimension: Hashable, Sendable {
    /// Every kind together (heap and mmap for a process).
    case all
    /// One kind alone.
    case kind(BlockKind)

    /// The session's spelling.
    public var name: String {
        switch self {
        case .all: return "all"
        case .kind(let k): return k.rawValue
        }
    }

    public init?(name: String) {
        if name == "all" {
            self = .all
        } else if let k = BlockKind(rawValue: name) {
            self = .kind(k)
        } else {
            return nil
        }
    }
}

/// The highest total outstanding so far, exact to the event that reached it. `epoch` counts the peaks:
/// a stack total row with the same epoch holds its value at this peak.
public struct PeakRow: Sendable, Equatable {
    public var dimension: PeakDimension
    public var epoch: UInt64
    public var timeNs: UInt64
    public var bytes: UInt64
    public var blocks: UInt64

    public init(dimension: PeakDimension, epoch: UInt64, timeNs: UInt64, bytes: UInt64, blocks: UInt64) {
        self.dimension = dimension
        self.epoch = epoch
        self.timeNs = timeNs
        self.bytes = bytes
        self.blocks = blocks
    }
}

/// A stack's outstanding total at one interval's end (stacks unchanged in the interval are absent).
public struct HistoryPoint: Sendable, Equatable {
    public var stackID: SessionStackID
    public var kind: BlockKind
    public var bytes: UInt64
    public var blocks: UInt64

    public init(stackID: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64) {
        self.stackID = stackID
        self.kind = kind
        self.bytes = bytes
        self.blocks = blocks
    }
}

/// Totals of one kind.
public struct KindTotal: Sendable, Equatable, Codable {
    public var bytes: UInt64
    public var blocks: UInt64

    public init(bytes: UInt64 = 0, blocks: UInt64 = 0) {
        self.bytes = bytes
        self.blocks = blocks
    }
}

/// One flush interval: when it ended, what was outstanding per kind then, and the process's RSS.
public struct IntervalRow: Sendable, Equatable {
    public var timeNs: UInt64
    public var outstanding: [BlockKind: KindTotal]
    /// VmRSS of the traced process (the launched or attached one) at the interval's end, if known.
    public var rssBytes: UInt64?

    public init(timeNs: UInt64, outstanding: [BlockKind: KindTotal] = [:], rssBytes: UInt64? = nil) {
        self.timeNs = timeNs
        self.outstanding = outstanding
        self.rssBytes = rssBytes
    }
}

/// A live block or region, as the session's checkpoints keep it.
public struct LiveBlock: Sendable, Equatable {
    // Stored in this order so a block takes 32 bytes: millions wait in a batch at scale.
    public var address: UInt64
    public var size: UInt64
    /// CLOCK_MONOTONIC nanoseconds of the allocation (to the tracker's resolution, about a millisecond).
    public var timeNs: UInt64
    public var stackID: SessionStackID
    public var function: AllocFunction
    /// mmap regions only.
    public var backing: Backing?

    public init(address: UInt64, size: UInt64, stackID: SessionStackID, timeNs: UInt64, function: AllocFunction, backing: Backing? = nil) {
        self.address = address
        self.size = size
        self.stackID = stackID
        self.timeNs = timeNs
        self.function = function
        self.backing = backing
    }
}

/// Which checkpoint a live block belongs to: its space and kind.
public struct LiveTableKey: Hashable, Sendable, Comparable {
    public var space: SpaceID
    public var kind: BlockKind

    public init(space: SpaceID, kind: BlockKind) {
        self.space = space
        self.kind = kind
    }

    public static func < (a: LiveTableKey, b: LiveTableKey) -> Bool { (a.space, a.kind.slot) < (b.space, b.kind.slot) }
}

/// What one interval changed in one space and kind's live blocks: blocks that appeared (still live at
/// the cut) and addresses whose stored block went away. A block both removed and put is replaced.
public struct LiveChanges: Sendable, Equatable {
    public var puts: [LiveBlock] = []
    public var removes: [UInt64] = []

    public init(puts: [LiveBlock] = [], removes: [UInt64] = []) {
        self.puts = puts
        self.removes = removes
    }

    public var isEmpty: Bool { puts.isEmpty && removes.isEmpty }
}

/// Rows a source adds to a batch beyond the core tables (the kernel side's OOM and reclaim tables).
/// They are written in the batch's transaction.
public protocol SessionRows: SourceRows {
    func write(to db: Database) throws
}

/// One line of a symbolized location: a function, and where in it.
public struct SymbolLine: Sendable, Equatable, Hashable {
    /// Demangled name.
    public var function: String?
    /// The name as the binary spells it, when it differs from `function`.
    public var systemName: String?
    public var file: String?
    public var line: Int?

    public init(function: String? = nil, systemName: String? = nil, file: String? = nil, line: Int? = nil) {
        self.function = function
        self.systemName = systemName
        self.file = file
        self.line = line
    }
}

/// One symbolized code address, as the symbolizer produces it and the session stores it once however
/// many stacks pass through it (pprof's Location). `lines` holds the inlined calls innermost first and
/// the function the code physically belongs to last.
public struct LocationRecord: Sendable, Equatable {
    public var id: Int64
    public var address: UInt64
    /// The session module it lies in (user space).
    public var moduleID: Int64?
    /// The kernel module's name ("kernel" for the core image), for kernel addresses.
    public var moduleName: String?
    /// The address as an offset into the module's file.
    public var fileOffset: UInt64?
    /// Bytes from the start of the outermost function's symbol.
    public var offset: UInt64?
    public var lines: [SymbolLine]

    public init(
        id: Int64, address: UInt64, moduleID: Int64? = nil, moduleName: String? = nil, fileOffset: UInt64? = nil, offset: UInt64? = nil,
        lines: [SymbolLine]
    ) {
        self.id = id
        self.address = address
        self.moduleID = moduleID
        self.moduleName = moduleName
        self.fileOffset = fileOffset
        self.offset = offset
        self.lines = lines
    }
}

/// A stack as the writer stores it: its locations innermost first (location ids of this batch or
/// earlier ones). The session keeps stacks as a tree of (parent, location) nodes, so shared callers are
/// stored once.
public struct StackRecord: Sendable, Equatable {
    public var id: SessionStackID
    public var space: SpaceID
    public var origin: StackOrigin
    public var truncated: Bool
    public var mayBeIncomplete: Bool
    public var taskPid: Int32?
    public var taskComm: String?
    public var locations: [Int64]

    public init(
        id: SessionStackID, space: SpaceID, origin: StackOrigin, truncated: Bool, mayBeIncomplete: Bool = false, taskPid: Int32? = nil,
        taskComm: String? = nil, locations: [Int64]
    ) {
        self.id = id
        self.space = space
        self.origin = origin
        self.truncated = truncated
        self.mayBeIncomplete = mayBeIncomplete
        self.taskPid = taskPid
        self.taskComm = taskComm
        self.locations = locations
    }
}

/// Everything one flush interval changed. The writer applies a batch in one transaction, so a session
/// file is always consistent as of its last batch.
public struct SessionBatch: Sendable {
    public var spaces: [SpaceRow] = []
    public var modules: [ModuleRow] = []
    public var moduleUnloads: [(id: Int64, timeNs: UInt64)] = []
    public var locations: [LocationRecord] = []
    public var stacks: [StackRecord] = []
    public var totals: [TotalRow] = []
    public var history: [HistoryPoint] = []
    public var interval: IntervalRow?
    /// Intervals of earlier batches that could not be written (disk full) and travel with this one.
    public var carriedIntervals: [(interval: IntervalRow, history: [HistoryPoint])] = []
    public var peaks: [PeakRow] = []
    public var live: [LiveTableKey: LiveChanges] = [:]
    /// Absolute values, replacing what the file held.
    public var counters: [CounterName: UInt64] = [:]
    public var records: [any SessionRows] = []
    /// CLOCK_MONOTONIC when the batch was cut; a session without an end is read as of this time.
    public var timeNs: UInt64 = 0

    public init() {}
}

/// SQLite stores signed 64-bit integers; addresses and sizes are unsigned and kept by bit pattern.
@inline(__always) public func sqlInt(_ v: UInt64) -> Int64 { Int64(bitPattern: v) }
@inline(__always) public func sqlUInt(_ v: Int64) -> UInt64 { UInt64(bitPattern: v) }

extension SessionBatch {
    /// This batch followed by `later`, as one: what a writer that could not write this one (disk full)
    /// writes once it can. Rows that replace keep the latest; rows that accumulate are all kept; live
    /// changes compose (a block put here and removed later is neither put nor kept).
    public mutating func append(_ later: SessionBatch) {
        var spaceIndex: [SpaceID: Int] = [:]
        for (i, s) in spaces.enumerated() { spaceIndex[s.id] = i }
        for s in later.spaces {
            if let i = spaceIndex[s.id] { spaces[i] = s } else { spaces.append(s) }
        }
        modules += later.modules
        moduleUnloads += later.moduleUnloads
        locations += later.locations
        stacks += later.stacks
        struct TotalKey: Hashable {
            var stack: SessionStackID
            var kind: BlockKind
        }
        var totalIndex: [TotalKey: Int] = [:]
        for (i, t) in totals.enumerated() { totalIndex[TotalKey(stack: t.stackID, kind: t.kind)] = i }
        for t in later.totals {
            if let i = totalIndex[TotalKey(stack: t.stackID, kind: t.kind)] { totals[i] = t } else { totals.append(t) }
        }
        if let i = interval { carriedIntervals.append((i, history)) }
        carriedIntervals += later.carriedIntervals
        interval = later.interval
        history = later.history
        var peakIndex: [PeakDimension: Int] = [:]
        for (i, p) in peaks.enumerated() { peakIndex[p.dimension] = i }
        for p in later.peaks {
            if let i = peakIndex[p.dimension] { peaks[i] = p } else { peaks.append(p) }
        }
        for (key, l) in later.live {
            guard let e = live[key] else {
                live[key] = l
                continue
            }
            let removed = Set(l.removes)
            let replaced = Set(l.puts.map(\.address))
            live[key] = LiveChanges(
                puts: e.puts.filter { !removed.contains($0.address) && !replaced.contains($0.address) } + l.puts,
                removes: Array(Set(e.removes).union(removed)))
        }
        for (k, v) in later.counters { counters[k] = v }
        records += later.records
        timeNs = later.timeNs
    }
}
