import KernelSession
import SessionStore
import Vocabulary

/// Which kernel allocations a collection tracks (`--kind`). OOM kills and reclaim are always collected.
public enum KernelAllocationKind: String, CaseIterable, Sendable {
    /// kmalloc and kmem_cache_alloc objects.
    case slab
    /// Pages from the page allocator, anonymous faults and page cache included.
    case page
    /// Per-CPU chunks.
    case percpu

    /// Parses "slab", "page", "percpu", "all", or a comma-separated list of them.
    public static func parse(_ text: String) throws(KernelError) -> Set<KernelAllocationKind> {
        var out: Set<KernelAllocationKind> = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if part == "all" {
                out.formUnion(allCases)
            } else if let k = KernelAllocationKind(rawValue: part) {
                out.insert(k)
            } else {
                throw .badOption("unknown --kind \(part): use slab, page, percpu or all")
            }
        }
        if out.isEmpty { throw .badOption("--kind needs slab, page, percpu or all") }
        return out
    }

    var blockKind: BlockKind {
        switch self {
        case .slab: return .kernelSlab
        case .page: return .kernelPage
        case .percpu: return .kernelPercpu
        }
    }
}

/// One tracepoint and the BPF program(s) attached to it, in attach order (a free's primary before its
/// backup: the kernel calls a tracepoint's programs in the order they were attached).
struct TracepointSpec {
    enum Group: Equatable {
        case allocations(KernelAllocationKind)
        case oom
        case reclaim
        /// Counted only, for `--extra-tracepoint` style requests.
        case extra
    }

    /// "category:name" as tracefs spells it; raw tracepoints are attached by the name alone.
    let name: String
    /// The BPF object and its programs.
    let object: String
    let programs: [String]
    let group: Group
    /// When this tracepoint is missing because the kernel renamed or merged it into the named one, which
    /// is then attached instead: not worth a warning.
    let olderNameOf: String?

    init(_ name: String, _ object: String, _ programs: [String], _ group: Group, olderNameOf: String? = nil) {
        self.name = name
        self.object = object
        self.programs = programs
        self.group = group
        self.olderNameOf = olderNameOf
    }

    var rawName: String { String(name.split(separator: ":").last ?? Substring(name)) }

    /// Every tracepoint the kernel side knows.
    static let all: [TracepointSpec] = [
        .init("kmem:kmalloc", "allocations", ["kmalloc"], .allocations(.slab)),
        .init("kmem:kmalloc_node", "allocations", ["kmalloc"], .allocations(.slab), olderNameOf: "kmem:kmalloc"),
        .init("kmem:kmem_cache_alloc", "allocations", ["kmem_cache_alloc"], .allocations(.slab)),
        .init("kmem:kmem_cache_alloc_node", "allocations", ["kmem_cache_alloc_node"], .allocations(.slab), olderNameOf: "kmem:kmem_cache_alloc"),
        .init("kmem:kfree", "allocations", ["kfree", "kfree_backup"], .allocations(.slab)),
        .init("kmem:kmem_cache_free", "allocations", ["kmem_cache_free", "kmem_cache_free_backup"], .allocations(.slab)),
        .init("kmem:mm_page_alloc", "allocations", ["mm_page_alloc"], .allocations(.page)),
        .init("kmem:mm_page_free", "allocations", ["mm_page_free", "mm_page_free_backup"], .allocations(.page)),
        .init("percpu:percpu_alloc_percpu", "allocations", ["percpu_alloc_percpu"], .allocations(.percpu)),
        .init("percpu:percpu_free_percpu", "allocations", ["percpu_free_percpu", "percpu_free_percpu_backup"], .allocations(.percpu)),
        .init("oom:mark_victim", "oom", ["mark_victim"], .oom),
        .init("oom:wake_reaper", "oom", ["wake_reaper"], .oom),
        .init("oom:start_task_reaping", "oom", ["start_task_reaping"], .oom),
        .init("oom:finish_task_reaping", "oom", ["finish_task_reaping"], .oom),
        .init("oom:skip_task_reaping", "oom", ["skip_task_reaping"], .oom),
        .init("oom:reclaim_retry_zone", "oom", ["reclaim_retry_zone"], .oom),
        .init("oom:compact_retry", "oom", ["compact_retry"], .oom),
        .init("vmscan:mm_vmscan_direct_reclaim_begin", "reclaim", ["direct_reclaim_begin"], .reclaim),
        .init("vmscan:mm_vmscan_direct_reclaim_end", "reclaim", ["direct_reclaim_end"], .reclaim),
        .init("vmscan:mm_vmscan_memcg_reclaim_begin", "reclaim", ["memcg_reclaim_begin"], .reclaim),
        .init("vmscan:mm_vmscan_memcg_reclaim_end", "reclaim", ["memcg_reclaim_end"], .reclaim),
        .init("vmscan:mm_vmscan_kswapd_wake", "reclaim", ["kswapd_wake"], .reclaim),
        .init("vmscan:mm_vmscan_kswapd_sleep", "reclaim", ["kswapd_sleep"], .reclaim),
        .init("vmscan:mm_shrink_slab_start", "reclaim", ["shrink_slab_start"], .reclaim),
        .init("vmscan:mm_shrink_slab_end", "reclaim", ["shrink_slab_end"], .reclaim),
        .init("vmscan:mm_vmscan_write_folio", "reclaim", ["write_folio"], .reclaim),
        .init("vmscan:mm_vmscan_writepage", "reclaim", ["write_folio"], .reclaim, olderNameOf: "vmscan:mm_vmscan_write_folio"),
    ]

    /// The tracepoints a collection of these kinds attaches, plus `extra` ones only counted.
    static func selected(kinds: Set<KernelAllocationKind>, extra: [String]) -> [TracepointSpec] {
        all.filter {
            if case .allocations(let k) = $0.group { return kinds.contains(k) }
            return true
        } + extra.map { TracepointSpec($0, "allocations", ["count_hits"], .extra) }
    }
}
