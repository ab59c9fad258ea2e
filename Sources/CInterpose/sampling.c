/* sampling.c: Poisson sampling by bytes (heapprofd's scheme, LEAKSHIM_SAMPLE_BYTES) and the set of sampled
 * blocks still live, so that frees of blocks that were never recorded cost no record either.
 *
 * Sample points fall on each thread's stream of allocated bytes as a Poisson process with mean spacing
 * `interval`: the thread keeps the distance to its next point and an allocation of n bytes is recorded
 * when a point falls inside it, with probability 1 - exp(-n / interval), the probability the collector
 * divides by (SamplingWeight). Allocations of at least `interval` bytes are always recorded. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "shim.h"

__thread int64_t ls_sample_left; /* bytes to this thread's next sample point; <= 0 until the first draw */
uint64_t ls_sample_interval;
static __thread uint64_t rng;     /* xorshift64* state; 0 until seeded */

/* ln(x) for x in (0, 1] without libm: x = m * 2^e with m in [1, 2), ln m = 2 atanh((m - 1) / (m + 1)) by
 * its series, which for m < 2 is within 1e-6 after five terms: far below sampling noise. */
static double ln_unit(double x) {
    union {
        double d;
        uint64_t u;
    } v = {x};
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    v.u = (v.u & ((1ull << 52) - 1)) | (1023ull << 52);
    double s = (v.d - 1) / (v.d + 1), s2 = s * s;
    double series = s * (1 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9)))));
    return e * 0.69314718055994530942 + 2 * series;
}

/* A distance to the next sample point: exponential with mean `interval`, at least 1. */
static int64_t draw(void) {
    if (LS_UNLIKELY(rng == 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO */
        rng = ((uint64_t)ts.tv_nsec << 20) ^ (uintptr_t)&rng ^ ls_tid() ^ 0x9e3779b97f4a7c15ull;
        if (rng == 0) rng = 1;
    }
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    double u = (double)(((rng * 0x2545f4914f6cdd1dull) >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double d = -ln_unit(u) * (double)ls_config.sample_bytes;
    return d < 1 ? 1 : d > 9.0e18 ? (int64_t)9.0e18 : (int64_t)d;
}

int ls_sample_slow(int64_t left) {
    if (LS_UNLIKELY(rng == 0)) {
        /* This thread's first allocation: its stream starts at a random point like every later one, so the
           first block is not sampled more often than the others. left = -n here (ls_sample_left was 0). */
        left += draw();
        if (left > 0) {
            ls_sample_left = left;
            return 0;
        }
    }
    while (left <= 0) left += draw(); /* points past the first inside this block change nothing */
    ls_sample_left = left;
    return 1;
}

/* ---- the set of sampled live blocks: cache-line buckets of seven addresses, and in front of them
 * ls_sampled_filter (shim.h), 64 KiB that stay in cache, so the free of a block that was never sampled
 * reads one byte. */
struct bucket {
    uint64_t slot[7];
    uint64_t unused;
};
_Static_assert(sizeof(struct bucket) == 64, "a bucket is one cache line");
static struct bucket *set;
/* NULL hashes to bucket 0: pinned, so free(NULL) before the real free is known never jumps to it. */
uint8_t ls_sampled_filter[LS_SET_BUCKETS] __attribute__((aligned(64))) = {[0] = LS_FILTER_PINNED};

void ls_filter_pin(const void *p) {
    __atomic_fetch_or(&ls_sampled_filter[ls_sampled_bucket(p)], LS_FILTER_PINNED, __ATOMIC_RELAXED);
}

void ls_filter_track_all(void) {
    /* Before tracking is on (init's release store of the state publishes it): a block recorded after
       that point is freed through a filter byte already set. */
    memset(ls_sampled_filter, 0xff, sizeof ls_sampled_filter);
}

int ls_sampling_init(void) {
    if (!ls_config.sample_bytes) return 0;
    size_t len = LS_SET_BUCKETS * sizeof(struct bucket);
    void *m = ls_sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -1;
    set = m;
    return 0;
}

void ls_sampled_add(const void *ptr) {
    uint32_t h = ls_sampled_bucket(ptr);
    struct bucket *b = &set[h];
    /* A write first: a page of the set first touched by a read maps the zero page and faults again on the
       CAS; nobody reads `unused`, so this store costs one fault per page instead of two. */
    __atomic_store_n(&b->unused, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < 7; i++) {
        uint64_t expect = 0;
        /* relaxed is enough: the app can only hand the block to a freeing thread after we return it,
           through its own synchronization, which orders these stores before that thread's loads */
        if (__atomic_load_n(&b->slot[i], __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&b->slot[i], &expect, (uintptr_t)ptr, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            __atomic_fetch_add(&ls_sampled_filter[h], 1, __ATOMIC_RELAXED); /* at most 7: never reaches bit 6 */
            return;
        }
    }
    __atomic_fetch_or(&ls_sampled_filter[h], LS_FILTER_OVERFLOWED, __ATOMIC_RELAXED);
}

int ls_sampled_remove(const void *ptr) {
    uint32_t h = ls_sampled_bucket(ptr);
    struct bucket *b = &set[h];
    for (int i = 0; i < 7; i++) {
        if (__atomic_load_n(&b->slot[i], __ATOMIC_RELAXED) == (uintptr_t)ptr) {
            __atomic_store_n(&b->slot[i], 0, __ATOMIC_RELAXED); /* only the freeing thread holds ptr now */
            __atomic_fetch_sub(&ls_sampled_filter[h], 1, __ATOMIC_RELAXED);
            return 1;
        }
    }
    return (__atomic_load_n(&ls_sampled_filter[h], __ATOMIC_RELAXED) & LS_FILTER_OVERFLOWED) != 0;
}
