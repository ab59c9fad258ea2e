import SessionStore

/// A stack as an event names it: by the id its source gave it, or already interned in the session.
public enum StackRef: Hashable, Sendable {
    /// An id from the shim's stack table; an earlier `Event.stack` gave its frames.
    case shim(UInt32)
    /// A stack already interned with `StackTable.intern` (kernel stacks arrive this way).
    case session(SessionStackID)
    /// No stack could be captured.
    case none
}

/// One allocation, from any source: the shim, uprobes or the kernel.
public struct Allocation: Sendable, Equatable {
    public var address: UInt64
    public var size: UInt64
    public var kind: BlockKind
    public var function: AllocFunction
    public var stack: StackRef
    /// CLOCK_MONOTONIC nanoseconds.
    public var time: UInt64
    public var tid: UInt32
    /// realloc/mremap: the block or region this one replaces. Its pending free came earlier.
    public var replaces: UInt64?
    /// For mmap: what backs the region.
    public var backing: Backing?
    /// Kernel allocations: the task that allocated.
    public var pid: Int32?
    public var comm: TaskName?

    public init(
        address: UInt64, size: UInt64, kind: BlockKind, function: AllocFunction, stack: StackRef,
        time: UInt64, tid: UInt32 = 0, replaces: UInt64? = nil, backing: Backing? = nil,
        pid: Int32? = nil, comm: TaskName? = nil
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
        self.pid = pid
        self.comm = comm
    }
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

/// A loaded ELF object in the traced process, as the shim reports it.
public struct ModuleInfo: Sendable, Equatable {
    /// The shim's id, stable for the life of the process.
    public var id: UInt32
    public var path: String
    /// The GNU build-id, or empty.
    public var buildID: [UInt8]
    /// Runtime address = bias + ELF virtual address.
    public var bias: UInt64
    /// Runtime address range of its PT_LOAD segments, hi exclusive.
    public var lo: UInt64
    public var hi: UInt64

    public init(id: UInt32, path: String, buildID: [UInt8], bias: UInt64, lo: UInt64, hi: UInt64) {
        self.id = id
        self.path = path
        self.buildID = buildID
        self.bias = bias
        self.lo = lo
        self.hi = hi
    }
}

/// The one event model every source feeds into the `Tracker`.
public enum Event: Sendable, Equatable {
    /// A block or region was allocated. mmap regions have kind `.mmap`.
    case alloc(Allocation)
    /// A heap or kernel block was freed. `pending`: issued by realloc before the real call; an
    /// `.alloc` with `replaces == address`, or an `.undo`, follows.
    case free(address: UInt64, kind: BlockKind, pending: Bool)
    /// A page range was unmapped (munmap, or mremap's old range when `pending`).
    case unmap(address: UInt64, length: UInt64, pending: Bool)
    /// The realloc/mremap that issued a pending free failed: the block or range is live again.
    case undo(address: UInt64, kind: BlockKind)
    /// The frames of a shim stack id, innermost first, return addresses.
    case stack(id: UInt32, frames: [UInt64], truncated: Bool)
    /// A module was loaded (or is reported again after an attach).
    case module(ModuleInfo)
    /// A module was unloaded.
    case moduleUnload(id: UInt32)
}
