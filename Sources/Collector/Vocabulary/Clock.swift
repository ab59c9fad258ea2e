import Glibc

/// CLOCK_MONOTONIC now, in nanoseconds: the clock every source stamps events with.
public func monotonicNow() -> UInt64 { clockNow(CLOCK_MONOTONIC) }

/// CLOCK_MONOTONIC_COARSE now: the clock the shim stamps allocations with (one tick behind at most),
/// for dating what carries no stamp of its own on the same footing.
public func coarseMonotonicNow() -> UInt64 { clockNow(CLOCK_MONOTONIC_COARSE) }

/// CLOCK_REALTIME now, in nanoseconds.
public func realtimeNow() -> UInt64 { clockNow(CLOCK_REALTIME) }

/// CPU time the calling thread has used, in nanoseconds.
public func threadCPUNow() -> UInt64 { clockNow(CLOCK_THREAD_CPUTIME_ID) }

private func clockNow(_ clock: clockid_t) -> UInt64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
