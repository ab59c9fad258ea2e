import CLibBPF
import Collector
import SessionStore

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

    func stack(id: Int32, tracker: Tracker) -> SessionStackID {
        if let s = byID[id] { return s }
        var key = id
        let sid: SessionStackID
        if stacksFD >= 0, bpf_map_lookup_elem(stacksFD, &key, &buffer) == 0 {
            let depth = buffer.firstIndex(of: 0) ?? buffer.count
            sid = intern(buffer[..<depth], truncated: depth == buffer.count, tracker: tracker)
        } else {
            lookupFailures &+= 1
            sid = 0
        }
        byID[id] = sid
        return sid
    }

    /// Frames carried in the record itself (the stack map had a collision).
    func stack(inline frames: UnsafeBufferPointer<UInt64>, tracker: Tracker) -> SessionStackID {
        intern(frames[...], truncated: frames.count == Int(KE_MAX_FRAMES), tracker: tracker)
    }

    private func intern<C: Collection>(_ frames: C, truncated: Bool, tracker: Tracker) -> SessionStackID where C.Element == UInt64 {
        let kept = frames.drop(while: isTracingFrame)
        return tracker.internKernelStack(Array(kept), truncated: truncated)
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
