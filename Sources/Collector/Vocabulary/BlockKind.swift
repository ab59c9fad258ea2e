/// What kind of memory an outstanding block is. The raw values are the session's and the JSON's
/// spelling, so they never change.
public enum BlockKind: String, CaseIterable, Sendable, Codable {
    /// malloc, calloc, realloc, the aligned allocators and C++ new.
    case heap
    /// mmap and mremap regions, anonymous or file-backed (see `Backing`).
    case mmap
    /// kmalloc and kmem_cache_alloc objects.
    case kernelSlab = "kernel-slab"
    /// Pages from the page allocator (mm_page_alloc), order > 0 included.
    case kernelPage = "kernel-page"
    /// Per-CPU allocations (percpu_alloc_percpu).
    case kernelPercpu = "kernel-percpu"

    /// True for the kinds the kernel side collects.
    public var isKernel: Bool {
        switch self {
        case .heap, .mmap: return false
        case .kernelSlab, .kernelPage, .kernelPercpu: return true
        }
    }
}

/// Which allocator entry point made a block. The raw values are the session's spelling.
public enum AllocFunction: String, Sendable, Codable {
    case malloc, calloc, realloc, reallocarray
    case posixMemalign = "posix_memalign"
    case alignedAlloc = "aligned_alloc"
    case memalign, valloc, pvalloc
    case mmap, mremap
    case kmalloc
    case kmemCacheAlloc = "kmem_cache_alloc"
    case pageAlloc = "mm_page_alloc"
    case percpuAlloc = "percpu_alloc"
    case unknown
}

/// What backs a mapping, or nothing for kinds where the question does not arise.
public enum Backing: String, Sendable, Codable {
    case anonymous = "anon"
    case file
}

extension BlockKind {
    /// Position in `allCases`, without a lookup on the per-event path.
    @inline(__always) public var slot: Int {
        switch self {
        case .heap: return 0
        case .mmap: return 1
        case .kernelSlab: return 2
        case .kernelPage: return 3
        case .kernelPercpu: return 4
        }
    }

    /// The kind at `slot`.
    public init?(slot: Int) {
        guard slot >= 0, slot < BlockKind.allCases.count else { return nil }
        self = BlockKind.allCases[slot]
    }
}

extension AllocFunction {
    /// Every function in a fixed order: its index is the 5-bit code the tracker and checkpoints store.
    public static let ordered: [AllocFunction] = [
        .unknown, .malloc, .calloc, .realloc, .reallocarray, .posixMemalign, .alignedAlloc, .memalign, .valloc, .pvalloc,
        .mmap, .mremap, .kmalloc, .kmemCacheAlloc, .pageAlloc, .percpuAlloc,
    ]

    /// The stored code of this function.
    @inline(__always) public var code: UInt8 {
        switch self {
        case .unknown: return 0
        case .malloc: return 1
        case .calloc: return 2
        case .realloc: return 3
        case .reallocarray: return 4
        case .posixMemalign: return 5
        case .alignedAlloc: return 6
        case .memalign: return 7
        case .valloc: return 8
        case .pvalloc: return 9
        case .mmap: return 10
        case .mremap: return 11
        case .kmalloc: return 12
        case .kmemCacheAlloc: return 13
        case .pageAlloc: return 14
        case .percpuAlloc: return 15
        }
    }

    /// The function with stored code `code`; `.unknown` for codes no function has.
    public init(code: UInt8) {
        self = Int(code) < Self.ordered.count ? Self.ordered[Int(code)] : .unknown
    }
}
