/// The one event model every source feeds into the tracker: the shim's ring, BPF uprobes, the kernel's
/// tracepoints, a snapshot of the blocks that were live before an attach, sampled allocations. The
/// tracker, the symbolizer, the session and the reports never learn which source an event came from;
/// only the session's `mode` says so.
///
/// Every event belongs to an *address space* (`SpaceID`): one image of one process (an `exec` starts a new
/// space for the same pid), or the kernel. Addresses, stack ids and module ids are unique only within
/// their space, so several processes (`--follow-children`) can feed one tracker.
public enum Event: Sendable, Equatable {
    /// A block or region was allocated. mmap regions have kind `.mmap`.
    case alloc(Allocation)
    /// A heap or kernel block was freed. `pending`: issued by realloc before the real call; an `.alloc`
    /// with `replaces == address`, or an `.undo`, follows.
    case free(address: UInt64, kind: BlockKind, pending: Bool)
    /// A page range was unmapped (munmap, or mremap's old range when `pending`).
    case unmap(address: UInt64, length: UInt64, pending: Bool)
    /// The realloc/mremap that issued a pending free failed: the block or range is live again.
    case undo(address: UInt64, kind: BlockKind)
    /// The frames of a stack the source names by `id` in later allocations.
    case stack(StackDefinition)
    /// A module was loaded (or is reported again after an attach).
    case module(ModuleInfo)
    /// A module was unloaded.
    case moduleUnload(id: UInt64, time: UInt64)
    /// Rows a source keeps in its own tables (the kernel side's OOM and reclaim records). The tracker
    /// passes them to the session in the batch of the interval they arrived in.
    case record(SourceRecord)
}

/// A session-wide id of one address space: a process image, or the kernel. The tracker hands these out.
public typealias SpaceID = UInt32

/// What an address space is. The tracker stores it; the reports show pid and command per space.
public struct SpaceInfo: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// A process image: user-space addresses, stacks and modules.
        case user
        /// The kernel: kernel addresses and stacks, no modules (kallsyms symbolizes).
        case kernel
    }

    public var kind: Kind
    /// The process (user) or the task filter (kernel; nil for every task).
    public var pid: Int32?
    /// The image's argv, as launched or as /proc/PID/cmdline showed it.
    public var command: [String]
    /// CLOCK_MONOTONIC when this image started being traced.
    public var startNs: UInt64
    /// The space this one continues: the image before an exec, or the parent of a followed child.
    public var parent: SpaceID?
    /// Allocations in this space are sampled (Poisson, by bytes, heapprofd's scheme) with this mean
    /// interval: a block of `size` bytes stands for `SamplingWeight.weight(size:interval:)` blocks.
    /// nil: every allocation is recorded, each with weight 1.
    public var samplingIntervalBytes: UInt64?

    public init(
        kind: Kind, pid: Int32?, command: [String], startNs: UInt64, parent: SpaceID? = nil, samplingIntervalBytes: UInt64? = nil
    ) {
        self.kind = kind
        self.pid = pid
        self.command = command
        self.startNs = startNs
        self.parent = parent
        self.samplingIntervalBytes = samplingIntervalBytes
    }
}

/// A stack as an allocation names it.
public enum StackRef: Hashable, Sendable {
    /// An id an earlier `.stack` event of the same space defined.
    case local(UInt64)
    /// No stack could be captured.
    case none
}

/// The frames of one stack, innermost first, as return addresses (kernel stacks: as the kernel gave them).
public struct StackDefinition: Sendable, Equatable {
    /// The source's id, unique within the space. A second definition of an id keeps the first.
    public var id: UInt64
    public var frames: [UInt64]
    /// Cut at the depth limit: the outermost callers are missing.
    public var truncated: Bool
    /// The unwinder may have stopped early without knowing it (a frame-pointer walk through code built
    /// without frame pointers): the report says the stack may be cut short.
    public var mayBeIncomplete: Bool
    /// Who allocated, for kernel stacks: each task's allocations from one kernel stack form a stack of
    /// their own, so a block's task is its stack's (no per-block field on the hot path).
    public var task: TaskIdentity?

    public init(id: UInt64, frames: [UInt64], truncated: Bool = false, mayBeIncomplete: Bool = false, task: TaskIdentity? = nil) {
        self.id = id
        self.frames = frames
        self.truncated = truncated
        self.mayBeIncomplete = mayBeIncomplete
        self.task = task
    }
}

/// The task a kernel allocation was made by.
public struct TaskIdentity: Hashable, Sendable {
    public var pid: Int32
    public var comm: TaskName

    public init(pid: Int32, comm: TaskName) {
        self.pid = pid
        self.comm = comm
    }
}

/// One block of a source's own table of what is live, as an attach or a resync reads it: the source's
/// stack id as the table holds it (32 bits), 32 bytes where an `Allocation` takes 72.
public struct SnapshotBlock: Sendable, Equatable {
    public var address: UInt64
    public var size: UInt64
    /// CLOCK_MONOTONIC nanoseconds.
    public var time: UInt64
    /// The source's stack id, or `SnapshotBlock.noStack`.
    public var stackID: UInt32
    public var function: AllocFunction
    public var kind: BlockKind

    public static let noStack = UInt32.max

    public init(address: UInt64, size: UInt64, kind: BlockKind, function: AllocFunction, stackID: UInt32, time: UInt64) {
        self.address = address
        self.size = size
        self.kind = kind
        self.function = function
        self.stackID = stackID
        self.time = time
    }

    /// From a stack reference; nil for an id that does not fit (no source here numbers its stacks that far).
    public init?(address: UInt64, size: UInt64, kind: BlockKind, function: AllocFunction, stack: StackRef, time: UInt64) {
        let id: UInt32
        switch stack {
        case .none: id = Self.noStack
        case .local(let local):
            guard local < UInt64(Self.noStack) else { return nil }
            id = UInt32(local)
        }
        self.init(address: address, size: size, kind: kind, function: function, stackID: id, time: time)
    }

    public var stack: StackRef { stackID == Self.noStack ? .none : .local(UInt64(stackID)) }

    /// The block as the allocation that made it.
    public var allocation: Allocation { Allocation(address: address, size: size, kind: kind, function: function, stack: stack, time: time) }
}

/// One allocation, from any source.
public struct Allocation: Sendable, Equatable {
    public var address: UInt64
    public var size: UInt64
    public var kind: BlockKind
    public var function: AllocFunction
    public var stack: StackRef
    /// CLOCK_MONOTONIC nanoseconds.
    public var time: UInt64
    /// The allocating thread (0 when unknown): temporary allocations are judged per thread.
    public var tid: UInt32
    /// realloc/mremap: the block or region this one replaces. Its pending free came earlier.
    public var replaces: UInt64?
    /// For mmap: what backs the region.
    public var backing: Backing?

    public init(
        address: UInt64, size: UInt64, kind: BlockKind, function: AllocFunction, stack: StackRef, time: UInt64, tid: UInt32 = 0,
        replaces: UInt64? = nil, backing: Backing? = nil
    ) {
        self.address = address
        self.size = size
        self.kind = kind
        self.function = function
        self.stack = stack
        self.time = time
        self.tid = tid
        self.replaces = replaces
        self.backing = backing
    }
}

/// A loaded ELF object in a traced process.
public struct ModuleInfo: Sendable, Equatable {
    /// The source's id, unique within the space for the life of the process.
    public var id: UInt64
    /// The path the process reports (or /proc/PID/maps shows). Shown in reports; never opened as is.
    public var path: String
    /// The GNU build-id, or empty.
    public var buildID: [UInt8]
    /// Runtime address = bias + ELF virtual address.
    public var bias: UInt64
    /// Runtime address range of its PT_LOAD segments, hi exclusive.
    public var lo: UInt64
    public var hi: UInt64
    /// CLOCK_MONOTONIC when the source learned of it.
    public var time: UInt64
    /// The module's file, opened by the source the safe way (ModuleFile) while the process lives, so it
    /// still symbolizes after the program unloads or deletes it. nil: it could not be opened.
    public var file: ModuleFile?

    public init(id: UInt64, path: String, buildID: [UInt8], bias: UInt64, lo: UInt64, hi: UInt64, time: UInt64 = 0, file: ModuleFile? = nil) {
        self.id = id
        self.path = path
        self.buildID = buildID
        self.bias = bias
        self.lo = lo
        self.hi = hi
        self.time = time
        self.file = file
    }

    public static func == (a: ModuleInfo, b: ModuleInfo) -> Bool {
        a.id == b.id && a.path == b.path && a.buildID == b.buildID && a.bias == b.bias && a.lo == b.lo && a.hi == b.hi
    }
}

/// Rows of a source's own tables, carried through the event path to the session writer, which knows
/// how to store them (SessionStore's `SessionRows` refines this). Opaque to the tracker: it only forwards them.
public protocol SourceRows: Sendable {
    /// Equality across the existential, for tests that compare decoded events.
    func isEqual(to other: any SourceRows) -> Bool
}

extension SourceRows where Self: Equatable {
    public func isEqual(to other: any SourceRows) -> Bool { (other as? Self) == self }
}

/// A `SourceRows` value inside an `Event`.
public struct SourceRecord: Sendable, Equatable {
    public let rows: any SourceRows

    public init(_ rows: any SourceRows) { self.rows = rows }

    public static func == (a: SourceRecord, b: SourceRecord) -> Bool { a.rows.isEqual(to: b.rows) }
}

/// A task's comm (at most 15 bytes, as the kernel keeps it), stored inline: an event that carries one
/// costs no reference counting on the collector's per-event path, where a String would.
public struct TaskName: Hashable, Sendable, CustomStringConvertible {
    private var low: UInt64 = 0
    private var high: UInt64 = 0

    /// Takes the first 15 bytes of `name`.
    public init(_ name: String) {
        self.init(bytes: Array(name.utf8.prefix(15)))
    }

    /// Takes bytes up to the first NUL, at most 15 (a kernel `comm[16]`).
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        var i = 0
        for b in bytes {
            if b == 0 || i == 15 { break }
            if i < 8 { low |= UInt64(b) << (8 * UInt64(i)) } else { high |= UInt64(b) << (8 * UInt64(i - 8)) }
            i += 1
        }
    }

    public var description: String {
        var out: [UInt8] = []
        for i in 0..<16 {
            let b = UInt8(truncatingIfNeeded: i < 8 ? low >> (8 * UInt64(i)) : high >> (8 * UInt64(i - 8)))
            if b == 0 { break }
            out.append(b)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
