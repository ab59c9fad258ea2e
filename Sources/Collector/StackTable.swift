import SessionStore

/// A frame waiting for symbolization: its address and the module that covered it when the stack arrived.
public struct RawFrame: Sendable, Equatable {
    public var address: UInt64
    public var module: SessionModule?
}

/// A stack the session has not stored yet, with what the symbolizer needs.
public struct NewStack: Sendable {
    public var id: SessionStackID
    public var origin: StackOrigin
    public var truncated: Bool
    public var frames: [RawFrame]
}

/// Every stack of the session, from any source, under one id space. Shim stack ids are translated
/// here; kernel stacks are interned by content.
struct StackTable {
    /// The id charged when no stack is known; stored as a stack with no frames.
    static let empty: SessionStackID = 0

    private(set) var count: Int = 1
    /// Shim ids are small and dense, so an array indexes them; larger ones fall back to a dictionary
    /// so a hostile id cannot make the collector allocate gigabytes.
    private var shimDense: [SessionStackID] = []
    private var shimSparse: [UInt32: SessionStackID] = [:]
    private static let denseLimit: UInt32 = 1 << 22
    private var kernelByContent: [[UInt64]: SessionStackID] = [:]
    private var unsent: [NewStack] = [NewStack(id: 0, origin: .user, truncated: false, frames: [])]

    /// Session id of a shim stack id, or nil if the shim never described it.
    @inline(__always) func lookupShim(_ id: UInt32) -> SessionStackID? {
        if id < shimDense.count {
            let s = shimDense[Int(id)]
            return s == 0 ? nil : s
        }
        return shimSparse[id]
    }

    /// Records a shim stack's frames. A repeated description of an id keeps the first.
    mutating func defineShim(_ id: UInt32, frames: [UInt64], truncated: Bool, modules: ModuleMap) {
        if lookupShim(id) != nil { return }
        let sid = SessionStackID(count)
        count += 1
        if id < Self.denseLimit {
            if Int(id) >= shimDense.count { shimDense.append(contentsOf: repeatElement(0, count: Int(id) + 1 - shimDense.count)) }
            shimDense[Int(id)] = sid
        } else {
            shimSparse[id] = sid
        }
        unsent.append(NewStack(id: sid, origin: .user, truncated: truncated, frames: frames.map { RawFrame(address: $0, module: modules.module(at: $0)) }))
    }

    /// The session id of a kernel stack, interning it on first sight.
    mutating func internKernel(_ frames: [UInt64], truncated: Bool = false) -> SessionStackID {
        if frames.isEmpty { return Self.empty }
        if let sid = kernelByContent[frames] { return sid }
        let sid = SessionStackID(count)
        count += 1
        kernelByContent[frames] = sid
        unsent.append(NewStack(id: sid, origin: .kernel, truncated: truncated, frames: frames.map { RawFrame(address: $0, module: nil) }))
        return sid
    }

    /// Stacks interned since the last call.
    mutating func takeNew() -> [NewStack] {
        let out = unsent
        unsent.removeAll()
        return out
    }
}
