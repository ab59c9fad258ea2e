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
