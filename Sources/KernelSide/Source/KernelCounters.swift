import KernelSession
import SessionStore
import Vocabulary

/// The session counters only kernel mode keeps. `lost_events` and `lost_bytes` (the ring buffer was
/// full) are the shared names; missed frees the kernel side could not see are split out here so a
/// report can say how far outstanding kernel blocks can be trusted.
extension CounterName {
    /// Runs of allocation programs the kernel skipped because the same program was already running on
    /// that CPU (an interrupt allocated while it ran). Those allocations are not tracked; harmless.
    public static let kernelAllocMisses = CounterName("kernel_alloc_probe_misses")
    /// Frees that both the primary and the backup free program missed (three levels of nesting): the
    /// primary's misses the backup did not rescue. Each one leaves a block outstanding until its address
    /// is allocated again, which replaces it and counts `missed_frees`.
    public static let kernelFreeMisses = CounterName("kernel_free_probe_misses")
    /// Frees the primary program missed (an interrupt freed memory while it ran) and the backup sent.
    public static let kernelFreesRescued = CounterName("kernel_frees_rescued")
    /// Allocations whose stack collided in the stack map and travelled inline instead.
    public static let kernelStacksInline = CounterName("kernel_stacks_inline")
    /// Allocations with no stack at all (charged to the empty stack).
    public static let kernelStacksFailed = CounterName("kernel_stacks_failed")
    /// Reclaim or shrinker ends whose begin was not seen (it began before the collector attached).
    public static let kernelUnmatchedEnds = CounterName("kernel_unmatched_ends")
    /// oom:reclaim_retry_zone and oom:compact_retry hits: the page allocator retrying before an OOM.
    public static let oomReclaimRetries = CounterName("oom_reclaim_retries")
    public static let oomCompactRetries = CounterName("oom_compact_retries")
    /// Hits of tracepoints attached only to be counted (LEAKCOLLECT_EXTRA_TRACEPOINTS).
    public static let kernelExtraHits = CounterName("kernel_extra_tracepoint_hits")
}
