import CLibBPF
import KernelSession
import SessionStore
import Vocabulary
import Symbols

/// Turns the BPF stack-map ids (or inline frames) of kernel allocations into session stacks, without
/// the frames of the tracing machinery itself: a stack captured in a tracepoint program starts with the
/// program, `bpf_trace_runN` and, when several programs share the tracepoint, `__traceiter_*`. Those say
/// nothing about who allocated, so they are dropped before the stack is interned.
final class KernelStacks {
    private let stacksFD: Int32
    /// Stack-map ids are stable (the map is created without BPF_F_REUSE_STACKID), so each is looked up once.
    private var byID: [Int32: SessionStackID] = [:]
    private var tracing: [UInt64: Bool] = [:]
    /// Also handed to the session's symbolizer, so kallsyms is read once.
    let symbols: KernelSymbols?
    private var buffer = [UInt64](repeating: 0, count: Int(KE_MAX_FRAMES))
    /// Ids the map no longer (or never) held: charged to the empty stack.
    private(set) var lookupFailures: UInt64 = 0

    /// Call after the programs are loaded, so /proc/kallsyms lists them.
    init(stacksFD: Int32) {
        self.stacksFD = stacksFD
        symbols = KernelSymbols.load()
    }

    /// Kernel stacks by content (stack-map id or inline frames), each with the local id its first task got.
    private var byContent: [[UInt64]: UInt64] = [:]
    private struct TaskStack: Hashable {
        var content: UInt64
        var task: TaskIdentity
    }
    /// One stack per (kernel stack, task): a block's task is its stack's.
    private var byTask: [TaskStack: UInt64] = [:]
    private var frames: [UInt64: [UInt64]] = [:]
    private var truncated: Set<UInt64> = []
    private var nextID: UInt64 = 1
    private var contentByMapID: [Int32: UInt64] = [:]

    /// The fast path: a stack-map id and the task exactly as the record carries them (its comm's raw
    /// bytes), so a stack seen before costs one lookup of four words and no name is decoded.
    private struct RecordKey: Hashable {
        var id: Int32
        var pid: Int32
        var comm: (UInt64, UInt64)

        static func == (a: RecordKey, b: RecordKey) -> Bool { a.id == b.id && a.pid == b.pid && a.comm == b.comm }
        func hash(into h: inout Hasher) {
            h.combine(UInt64(UInt32(bitPattern: id)) << 32 | UInt64(UInt32(bitPattern: pid)))
            h.combine(comm.0)
            h.combine(comm.1)
        }
    }
    private var byRecord: [RecordKey: StackRef] = [:]

    /// A direct-mapped cache in front of `byRecord`: a workload repeats a few hot (stack, task) pairs, and
    /// a slot found by a multiply costs less than hashing the key. Written only here; ids are never
    /// negative, so the empty slots' id -1 matches nothing.
    private static let recentSlots = 1 << 12
    private struct Recent {
        var key = RecordKey(id: -1, pid: 0, comm: (0, 0))
        var ref = StackRef.none
    }
    private let recent: UnsafeMutablePointer<Recent> = {
        let p = UnsafeMutablePointer<Recent>.allocate(capacity: KernelStacks.recentSlots)
        p.initialize(repeating: Recent(), count: KernelStacks.recentSlots)
        return p
    }()

    deinit { recent.deallocate() }

    /// The stack of an allocation by task `pid`/`comm` whose kernel stack has stack-map id `id`; `define`
    /// gets the definition the first time this (stack, task) pair is seen.
    func stack(id: Int32, pid: Int32, comm: KernelComm, define: (StackDefinition) -> Void) -> StackRef {
        let raw = withUnsafeBytes(of: comm) { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
        let key = RecordKey(id: id, pid: pid, comm: raw)
        let mixed = (UInt64(UInt32(bitPattern: id)) << 32 | UInt64(UInt32(bitPattern: pid))) &* 0x9E37_79B9_7F4A_7C15
        let slot = recent + Int(truncatingIfNeeded: mixed >> 52)
        if slot.pointee.key == key { return slot.pointee.ref }
        let ref: StackRef
        if let known = byRecord[key] {
            ref = known
        } else {
            ref = stack(id: id, task: TaskIdentity(pid: pid, comm: Self.taskName(comm)), define: define)
            byRecord[key] = ref
        }
        slot.pointee = Recent(key: key, ref: ref)
        return ref
    }

    /// The stack of an allocation by `task` whose kernel stack has stack-map id `id`.
    private func stack(id: Int32, task: TaskIdentity, define: (StackDefinition) -> Void) -> StackRef {
        let content: UInt64
        if let c = contentByMapID[id] {
            content = c
        } else {
            var key = id
            if stacksFD >= 0, bpf_map_lookup_elem(stacksFD, &key, &buffer) == 0 {
                let depth = buffer.firstIndex(of: 0) ?? buffer.count
                content = intern(buffer[..<depth], truncated: depth == buffer.count)
            } else {
                lookupFailures &+= 1
                content = 0
            }
            contentByMapID[id] = content
        }
        return ref(content, task: task, define: define)
    }

    /// Frames carried in the record itself (the stack map had a collision).
    func stack(inline frames: UnsafeBufferPointer<UInt64>, pid: Int32, comm: KernelComm, define: (StackDefinition) -> Void) -> StackRef {
        ref(intern(frames[...], truncated: frames.count == Int(KE_MAX_FRAMES)), task: TaskIdentity(pid: pid, comm: Self.taskName(comm)), define: define)
    }

    /// A task's comm as the tracker keeps it: a value, no string.
    static func taskName(_ raw: KernelComm) -> TaskName {
        withUnsafeBytes(of: raw) { TaskName(bytes: $0) }
    }

    private func ref(_ content: UInt64, task: TaskIdentity, define: (StackDefinition) -> Void) -> StackRef {
        guard content != 0 else { return .none }
        let key = TaskStack(content: content, task: task)
        if let id = byTask[key] { return .local(id) }
        let id = nextID
        nextID += 1
        byTask[key] = id
        define(StackDefinition(id: id, frames: frames[content] ?? [], truncated: truncated.contains(content), task: task))
        return .local(id)
    }

    /// A content id for these frames without the tracing machinery's own; 0 for an empty stack.
    private func intern<C: Collection>(_ all: C, truncated isTruncated: Bool) -> UInt64 where C.Element == UInt64 {
        let kept = Array(all.drop(while: isTracingFrame))
        if kept.isEmpty { return 0 }
        if let c = byContent[kept] { return c }
        let c = UInt64(byContent.count + 1)
        byContent[kept] = c
        frames[c] = kept
        if isTruncated { truncated.insert(c) }
        return c
    }

    private func isTracingFrame(_ address: UInt64) -> Bool {
        if let known = tracing[address] { return known }
        var result = false
        if let f = symbols?.resolve(address) {
            let name = f.function ?? ""
            result =
                f.module == "bpf" || name.hasPrefix("bpf_prog_") || name.hasPrefix("bpf_trace_run") || name.hasPrefix("__bpf_trace_")
                || name.hasPrefix("__traceiter_")
        }
        tracing[address] = result
        return result
    }

    /// The function an address is in, for shrinker names.
    func functionName(_ address: UInt64) -> String? { symbols?.resolve(address).function }
}
