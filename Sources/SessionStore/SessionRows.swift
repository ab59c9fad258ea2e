import GRDB

/// A loaded object as stored in `modules`.
public struct ModuleRow: Sendable, Equatable {
    public var id: Int64
    public var path: String
    /// Lower-case hex, or empty.
    public var buildID: String
    public var bias: UInt64
    public var lo: UInt64
    public var hi: UInt64
    public var loadedNs: UInt64
    public var unloadedNs: UInt64?

    public init(id: Int64, path: String, buildID: String, bias: UInt64, lo: UInt64, hi: UInt64, loadedNs: UInt64, unloadedNs: UInt64? = nil) {
        self.id = id
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

/// One symbolized frame. `address` is a return address; file and line belong to `address - 1`.
public struct FrameRow: Sendable, Equatable, Codable {
    public var address: UInt64
    public var function: String?
    /// Bytes from the start of `function` to `address`.
    public var offset: UInt64?
    /// The module's path (user space) or the kernel module's name ("vmlinux" for the core kernel).
    public var module: String?
    public var file: String?
    public var line: Int?

    public init(address: UInt64, function: String? = nil, offset: UInt64? = nil, module: String? = nil, file: String? = nil, line: Int? = nil) {
        self.address = address
        self.function = function
        self.offset = offset
        self.module = module
        self.file = file
        self.line = line
    }
}

/// A stack and its symbolized frames, innermost first.
public struct StackRow: Sendable, Equatable {
    public var id: SessionStackID
    public var origin: StackOrigin
    public var truncated: Bool
    public var frames: [FrameRow]

    public init(id: SessionStackID, origin: StackOrigin, truncated: Bool, frames: [FrameRow]) {
        self.id = id
        self.origin = origin
        self.truncated = truncated
        self.frames = frames
    }
}

/// Identifies one live block or region.
public struct LiveKey: Hashable, Sendable {
    public var kind: BlockKind
    public var address: UInt64
    public init(kind: BlockKind, address: UInt64) {
        self.kind = kind
        self.address = address
    }
}

/// A block or region that is still allocated.
public struct LiveRow: Sendable, Equatable {
    public var kind: BlockKind
    public var address: UInt64
    public var size: UInt64
    public var stackID: SessionStackID
    /// CLOCK_MONOTONIC nanoseconds of the allocation.
    public var timeNs: UInt64
    public var function: AllocFunction
    public var tid: UInt32
    public var backing: Backing?
    public var pid: Int32?
    public var comm: String?

    public init(
        kind: BlockKind, address: UInt64, size: UInt64, stackID: SessionStackID, timeNs: UInt64, function: AllocFunction,
        tid: UInt32, backing: Backing? = nil, pid: Int32? = nil, comm: String? = nil
    ) {
        self.kind = kind
        self.address = address
        self.size = size
        self.stackID = stackID
        self.timeNs = timeNs
        self.function = function
        self.tid = tid
        self.backing = backing
        self.pid = pid
        self.comm = comm
    }
}

/// Outstanding and cumulative allocation per stack and kind.
public struct TotalRow: Sendable, Equatable {
    public var stackID: SessionStackID
    public var kind: BlockKind
    public var bytes: UInt64
    public var blocks: UInt64
    public var totalBytes: UInt64
    public var totalBlocks: UInt64

    public init(stackID: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64, totalBytes: UInt64, totalBlocks: UInt64) {
        self.stackID = stackID
        self.kind = kind
        self.bytes = bytes
        self.blocks = blocks
        self.totalBytes = totalBytes
        self.totalBlocks = totalBlocks
    }
}

/// A stack's outstanding total at one snapshot time.
public struct SnapshotRow: Sendable, Equatable {
    public var timeNs: UInt64
    public var stackID: SessionStackID
    public var kind: BlockKind
    public var bytes: UInt64
    public var blocks: UInt64

    public init(timeNs: UInt64, stackID: SessionStackID, kind: BlockKind, bytes: UInt64, blocks: UInt64) {
        self.timeNs = timeNs
        self.stackID = stackID
        self.kind = kind
        self.bytes = bytes
        self.blocks = blocks
    }
}

/// Rows a source adds to a batch beyond the core tables (the kernel side's OOM and reclaim tables).
/// They are written in the batch's transaction.
public protocol SessionRows: Sendable {
    func write(to db: Database) throws
}

/// Everything one flush interval changed. The writer applies a batch in one transaction, so a session
/// file is always consistent as of its last batch.
public struct SessionBatch: Sendable {
    public var modules: [ModuleRow] = []
    public var moduleUnloads: [(id: Int64, timeNs: UInt64)] = []
    public var stacks: [StackRow] = []
    public var totals: [TotalRow] = []
    /// Applied before `liveUpserts`, so a freed block and a new one at the same address both land.
    public var liveDeletes: [LiveKey] = []
    public var liveUpserts: [LiveRow] = []
    public var snapshot: [SnapshotRow] = []
    /// Absolute values, replacing what the file held.
    public var counters: [CounterName: UInt64] = [:]
    public var extra: [any SessionRows] = []
    /// CLOCK_MONOTONIC when the batch was cut; a session without an end is read as of this time.
    public var timeNs: UInt64 = 0

    public init() {}

    public var isEmpty: Bool {
        modules.isEmpty && moduleUnloads.isEmpty && stacks.isEmpty && totals.isEmpty && liveDeletes.isEmpty
            && liveUpserts.isEmpty && snapshot.isEmpty && counters.isEmpty && extra.isEmpty
    }
}

/// SQLite stores signed 64-bit integers; addresses and sizes are unsigned and kept by bit pattern.
@inline(__always) public func sqlInt(_ v: UInt64) -> Int64 { Int64(bitPattern: v) }
@inline(__always) public func sqlUInt(_ v: Int64) -> UInt64 { UInt64(bitPattern: v) }
