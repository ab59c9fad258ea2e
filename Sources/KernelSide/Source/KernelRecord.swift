import CLibBPF
import KernelSession
import Vocabulary

/// One record of the kernel programs' ring buffer (bpf/kernel_events.h), decoded and checked with no
/// libbpf, tracker or table in sight, so it can be tested and fuzzed on its own. The kernel writes
/// these through our programs, but the bytes are still read as untrusted: a record shorter than its
/// type needs, or with a kind or step the programs never write, decodes to nil and is skipped.
enum KernelRecord {
    /// `frames`: the return addresses inline after the record when the stack map had no room (never more
    /// than the record holds); points into the ring buffer, valid only during the callback.
    case alloc(ke_alloc, kind: BlockKind, function: AllocFunction, frames: UnsafeBufferPointer<UInt64>)
    case free(address: UInt64, kind: BlockKind)
    case oom(ke_oom)
    case reaper(OOMReaperRow)
    case reclaim(ReclaimKind, pid: Int32, comm: KernelComm, durationNs: UInt64, reclaimedPages: UInt64)
    case kswapd(nid: Int32, wake: Bool)
    case shrink(ke_shrink)

    static func decode(_ data: UnsafeRawPointer, size: Int) -> KernelRecord? {
        guard size >= MemoryLayout<ke_header>.size else { return nil }
        let header = data.loadUnaligned(as: ke_header.self)
        func fits<T>(_: T.Type) -> Bool { size >= MemoryLayout<T>.size }
        switch UInt32(header.type) {
        case KE_ALLOC.rawValue where fits(ke_alloc.self):
            let a = data.loadUnaligned(as: ke_alloc.self)
            guard let kind = blockKind(a.kind) else { return nil }
            let available = (size - MemoryLayout<ke_alloc>.size) / MemoryLayout<UInt64>.size
            let n = a.stack_id >= 0 ? 0 : min(Int(a.nr_frames), available)
            let start = data + MemoryLayout<ke_alloc>.size
            // The ring buffer's records are 8-byte aligned and ke_alloc's size is a multiple of 8.
            let frames = UnsafeBufferPointer(start: n == 0 ? nil : start.assumingMemoryBound(to: UInt64.self), count: n)
            return .alloc(a, kind: kind, function: allocFunction(a.function), frames: frames)
        case KE_FREE.rawValue where fits(ke_free.self):
            let f = data.loadUnaligned(as: ke_free.self)
            guard let kind = blockKind(f.kind) else { return nil }
            return .free(address: f.address, kind: kind)
        case KE_OOM_VICTIM.rawValue where fits(ke_oom.self):
            return .oom(data.loadUnaligned(as: ke_oom.self))
        case KE_OOM_REAPER.rawValue where fits(ke_reaper.self):
            let r = data.loadUnaligned(as: ke_reaper.self)
            let steps: [OOMReaperRow.Step] = [.wake, .start, .finish, .skip]
            guard Int(r.step) < steps.count else { return nil }
            return .reaper(OOMReaperRow(timeNs: r.h.time_ns, pid: Int32(bitPattern: r.pid), step: steps[Int(r.step)]))
        case KE_RECLAIM.rawValue where fits(ke_reclaim.self):
            let r = data.loadUnaligned(as: ke_reclaim.self)
            let kind: ReclaimKind = r.kind == KE_RECLAIM_MEMCG.rawValue ? .memcg : .direct
            return .reclaim(kind, pid: Int32(bitPattern: r.h.tgid), comm: r.comm, durationNs: r.duration_ns, reclaimedPages: r.reclaimed_pages)
        case KE_KSWAPD.rawValue where fits(ke_kswapd.self):
            let k = data.loadUnaligned(as: ke_kswapd.self)
            return .kswapd(nid: k.nid, wake: k.wake != 0)
        case KE_SHRINK.rawValue where fits(ke_shrink.self):
            return .shrink(data.loadUnaligned(as: ke_shrink.self))
        default:
            return nil
        }
    }

    static func blockKind(_ k: UInt8) -> BlockKind? {
        switch UInt32(k) {
        case KE_KIND_SLAB.rawValue: return .kernelSlab
        case KE_KIND_PAGE.rawValue: return .kernelPage
        case KE_KIND_PERCPU.rawValue: return .kernelPercpu
        default: return nil
        }
    }

    static func allocFunction(_ f: UInt8) -> AllocFunction {
        switch UInt32(f) {
        case KE_FN_KMALLOC.rawValue: return .kmalloc
        case KE_FN_KMEM_CACHE_ALLOC.rawValue: return .kmemCacheAlloc
        case KE_FN_PAGE_ALLOC.rawValue: return .pageAlloc
        case KE_FN_PERCPU_ALLOC.rawValue: return .percpuAlloc
        default: return .unknown
        }
    }

    /// A fixed-size C string field (NUL-terminated unless it fills the field).
    static func string<T>(_ field: T) -> String {
        var copy = field
        return withUnsafeBytes(of: &copy) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    /// What an OOM record itself says, in the session's units. Sizes the kernel could never report
    /// (more bytes than 64 bits hold) become nil rather than wrapping or trapping.
    struct OOMFacts: Equatable {
        var uid: UInt32?
        var totalVmKB: UInt64?
        var anonRssKB: UInt64?
        var fileRssKB: UInt64?
        var shmemRssKB: UInt64?
        var pgtablesKB: UInt64?
        var oomScoreAdj: Int32?
        var memcg: String?
        var memcgLimitBytes: UInt64?
        var memcgUsageBytes: UInt64?
    }

    static func oomFacts(_ o: ke_oom, pageSize: UInt64) -> OOMFacts {
        var f = OOMFacts()
        func times(_ a: UInt64, _ b: UInt64) -> UInt64? {
            let (r, overflow) = a.multipliedReportingOverflow(by: b)
            return overflow ? nil : r
        }
        if o.flags & UInt32(KE_OOM_HAS_TASK) != 0 {
            let kbPerPage = pageSize / 1024
            f.uid = o.uid
            f.totalVmKB = times(o.total_vm_pages, kbPerPage)
            f.anonRssKB = times(o.anon_rss_pages, kbPerPage)
            f.fileRssKB = times(o.file_rss_pages, kbPerPage)
            f.shmemRssKB = times(o.shmem_rss_pages, kbPerPage)
            f.pgtablesKB = o.pgtables_bytes / 1024
            f.oomScoreAdj = o.oom_score_adj
        }
        if o.flags & UInt32(KE_OOM_HAS_MEMCG) != 0 {
            f.memcg = memcgPath(o)
            // page_counter's "no limit" is PAGE_COUNTER_MAX, LONG_MAX in bytes divided by the page size.
            if o.memcg_max_pages < UInt64(Int64.max) / pageSize { f.memcgLimitBytes = o.memcg_max_pages * pageSize }
            f.memcgUsageBytes = times(o.memcg_usage_pages, pageSize)
        }
        return f
    }

    /// The cgroup path from the kernfs names the program collected leaf first. The hierarchy's root has
    /// an empty name; a path deeper than the program walks starts with "...".
    static func memcgPath(_ o: ke_oom) -> String {
        var copy = o.memcg
        let depth = min(Int(o.memcg_depth), Int(KE_MEMCG_DEPTH))
        var names = withUnsafeBytes(of: &copy) { raw in
            (0..<depth).map { i -> String in
                let slice = raw[(i * Int(KE_MEMCG_NAME_LEN))..<((i + 1) * Int(KE_MEMCG_NAME_LEN))]
                return String(decoding: slice.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        let reachedRoot = names.last?.isEmpty ?? true
        if reachedRoot, !names.isEmpty { names.removeLast() }
        let path = "/" + names.reversed().joined(separator: "/")
        return reachedRoot ? path : "..." + path
    }
}

/// The C comm field as Swift imports it.
typealias KernelComm = (CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar)
