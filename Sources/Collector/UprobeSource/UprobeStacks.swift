import CLibBPF
import Vocabulary

/// Turns the stack-map ids (or inline frames) of BPF-only allocations into stack definitions for the
/// tracker, each defined once. Frames come from the kernel's frame-pointer walk of the user stack, so a
/// stack through code built without frame pointers can end early, or skip callers, without knowing it:
/// a stack whose outermost frame is in no module is marked as possibly cut short, and counted.
final class UprobeStacks {
    private let stacksFD: Int32
    private let depth: Int
    private var buffer: [UInt64]
    /// Stack-map ids are stable (the map is created without BPF_F_REUSE_STACKID): each is read once.
    private var byMapID: [Int32: StackRef] = [:]
    private var byFrames: [[UInt64]: StackRef] = [:]
    private var nextInlineID: UInt64 = 1 << 32
    private(set) var lookupFailures: UInt64 = 0
    private(set) var cutShort: UInt64 = 0
    private(set) var truncated: UInt64 = 0

    init(stacksFD: Int32, depth: Int) {
        self.stacksFD = stacksFD
        self.depth = depth
        buffer = [UInt64](repeating: 0, count: depth)
    }

    /// The stack of stack-map id `id` if it was seen before.
    @inline(__always) func known(mapID id: Int32) -> StackRef? { byMapID[id] }

    /// The stack of stack-map id `id`; `define` gets its definition the first time.
    func stack(mapID id: Int32, complete: ([UInt64]) -> Bool, define: (StackDefinition) -> Void) -> StackRef {
        if let known = byMapID[id] { return known }
        var key = id
        let ref: StackRef
        if stacksFD >= 0, bpf_map_lookup_elem(stacksFD, &key, &buffer) == 0 {
            let n = buffer.firstIndex(of: 0) ?? buffer.count
            let frames = Array(buffer[..<n])
            ref = frames.isEmpty ? .none : make(UInt64(UInt32(bitPattern: id)) + 1, frames, complete: complete, define: define)
        } else {
            lookupFailures &+= 1
            ref = .none
        }
        byMapID[id] = ref
        return ref
    }

    /// Frames carried in the record itself (the stack map had a collision).
    func stack(inline frames: [UInt64], complete: ([UInt64]) -> Bool, define: (StackDefinition) -> Void) -> StackRef {
        let kept = Array(frames.prefix(depth))
        if kept.isEmpty { return .none }
        if let known = byFrames[kept] { return known }
        let ref = make(nextInlineID, kept, complete: complete, define: define)
        nextInlineID += 1
        byFrames[kept] = ref
        return ref
    }

    private func make(_ id: UInt64, _ frames: [UInt64], complete: ([UInt64]) -> Bool, define: (StackDefinition) -> Void) -> StackRef {
        let isTruncated = frames.count >= depth
        let incomplete = !isTruncated && !complete(frames)
        if isTruncated { truncated &+= 1 }
        if incomplete { cutShort &+= 1 }
        define(StackDefinition(id: id, frames: frames, truncated: isTruncated, mayBeIncomplete: incomplete))
        return .local(id)
    }
}
