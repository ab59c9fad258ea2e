import SessionStore
import Vocabulary

/// A frame waiting for symbolization: its address and the session id of the module that covered it
/// when the stack arrived (0: none). 16 bytes: millions of these wait for the writer at scale.
public struct RawFrame: Sendable, Equatable {
    public var address: UInt64
    public var moduleID: Int64

    public init(address: UInt64, moduleID: Int64 = 0) {
        self.address = address
        self.moduleID = moduleID
    }
}

/// A stack the session has not stored yet, with what the symbolizer needs.
public struct NewStack: Sendable {
    public var id: SessionStackID
    public var space: SpaceID
    public var origin: StackOrigin
    public var truncated: Bool
    public var mayBeIncomplete: Bool
    public var task: TaskIdentity?
    /// The process of a user space (from its `SpaceInfo`): JIT frames resolve through its perf map.
    public var pid: Int32?
    public var frames: [RawFrame]

    public init(
        id: SessionStackID, space: SpaceID, origin: StackOrigin, truncated: Bool = false, mayBeIncomplete: Bool = false, task: TaskIdentity? = nil,
        pid: Int32? = nil, frames: [RawFrame]
    ) {
        self.id = id
        self.space = space
        self.origin = origin
        self.truncated = truncated
        self.mayBeIncomplete = mayBeIncomplete
        self.task = task
        self.pid = pid
        self.frames = frames
    }
}

/// Every stack of the session, from every space and source, under one id space. A source's own ids
/// (the shim's, BPF stack-map ids, a kernel source's interned ids) are translated per space.
struct StackTable {
    /// The id charged when no stack is known; stored as a stack with no frames.
    static let empty: SessionStackID = 0

    private(set) var count: Int = 1
    private var unsent: [NewStack] = [
        NewStack(id: 0, space: 0, origin: .user, truncated: false, mayBeIncomplete: false, task: nil, frames: [])
    ]

    /// Frames kept per stack; deeper stacks are cut and marked truncated.
    var maxDepth = Int.max

    /// Assigns a session id to a definition; the caller records the translation in its space.
    mutating func define(_ d: StackDefinition, space: SpaceID, origin: StackOrigin, pid: Int32?, modules: ModuleMap?) -> SessionStackID {
        let sid = SessionStackID(truncatingIfNeeded: count)
        count += 1
        let frames = d.frames.count > maxDepth ? Array(d.frames.prefix(maxDepth)) : d.frames
        unsent.append(
            NewStack(
                id: sid, space: space, origin: origin, truncated: d.truncated || d.frames.count > maxDepth,
                mayBeIncomplete: d.mayBeIncomplete, task: d.task, pid: pid,
                frames: frames.map { RawFrame(address: $0, moduleID: modules?.module(at: $0)?.sessionID ?? 0) }))
        return sid
    }

    var hasUnsent: Bool { !unsent.isEmpty }

    /// Stacks defined since the last call.
    mutating func takeNew() -> [NewStack] {
        let out = unsent
        unsent.removeAll()
        return out
    }
}

/// A space's translation from its source's stack ids to session ids. Small ids (the shim's are dense)
/// index an array; larger ones fall back to a dictionary, so a hostile id cannot make the collector
/// allocate gigabytes.
struct StackIDMap {
    private var dense: [SessionStackID] = []
    private var sparse: [UInt64: SessionStackID] = [:]
    private static let denseLimit: UInt64 = 1 << 22

    @inline(__always) func lookup(_ id: UInt64) -> SessionStackID? {
        if id < UInt64(dense.count) {
            let s = dense[Int(id)]
            return s == 0 ? nil : s
        }
        return sparse[id]
    }

    mutating func set(_ id: UInt64, _ sid: SessionStackID) {
        if id < Self.denseLimit {
            // An Array, not repeatElement: unspecialized (a debug build, the fuzzer's), appending a
            // Repeated boxed every element, and one hostile id near the limit took half a minute.
            if Int(id) >= dense.count { dense.append(contentsOf: [SessionStackID](repeating: 0, count: Int(id) + 1 - dense.count)) }
            dense[Int(id)] = sid
        } else {
            sparse[id] = sid
        }
    }
}
