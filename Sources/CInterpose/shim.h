/* shim.h: what the shim's files share. Nothing here is exported from libleakshim.so. */
#ifndef LEAKSHIM_SHIM_H
#define LEAKSHIM_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "leakring.h"

/* Everything declared below is the shim's own: hidden, so the compiler addresses its globals directly
 * (one RIP-relative access) instead of through the GOT, as it must for a symbol another object could
 * define. Only LS_EXPORT overrides it. */
#pragma GCC visibility push(hidden)

#define LS_EXPORT __attribute__((visibility("default")))
#define LS_LIKELY(x) __builtin_expect(!!(x), 1)
#define LS_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* A wrapper's hand-over to its tracked body: a jump, so the body's frame is the one the app called
 * (the walk starts there) and the wrapper needs no frame of its own. */
#if defined(__has_attribute) && __has_attribute(musttail)
#define LS_MUSTTAIL __attribute__((musttail))
#else
#define LS_MUSTTAIL
#endif

/* ---- bootstrap.c: the real allocator behind us, and the arena that serves dlsym's own allocations. */
struct ls_real {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    void *(*mmap64)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    void *(*mremap)(void *, size_t, size_t, int, ...);
    int (*dlclose)(void *);
};
extern struct ls_real ls_real;
int ls_resolve(void); /* 1 once every ls_real pointer is set; 0 while another thread is still resolving */
void *ls_arena_alloc(size_t size, size_t align);
#define LS_ARENA_SIZE (256u << 10)
extern unsigned char ls_arena[LS_ARENA_SIZE];
static inline int ls_in_arena(const void *p) { return (uintptr_t)p - (uintptr_t)ls_arena < LS_ARENA_SIZE; }
size_t ls_arena_block_size(const void *p);
void *ls_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off); /* never interposed */
int ls_sys_munmap(void *addr, size_t len);

/* ---- config.c: LEAKSHIM_* environment, read once at init. */
struct ls_config {
    int disable;
    uint64_t ring_size;   /* data bytes, a power of two */
    uint32_t depth;       /* frames kept per stack */
    uint64_t max_wait_ns; /* longest a writer waits for a full ring */
    pid_t collector_pid;  /* 0 when unset */
    int unwind;           /* LEAKSHIM_UNWIND: enum ls_unwind_mode */
    int follow_children;  /* LEAKSHIM_FOLLOW_CHILDREN=1: forks and execs of descendants hand their rings over too */
    uint64_t sample_bytes; /* LEAKSHIM_SAMPLE_BYTES: mean sampling interval in bytes; 0 records every allocation */
};
enum ls_unwind_mode {
    LS_UNWIND_CFI = 0,       /* the default: cached DWARF rules (unwind.c) */
    LS_UNWIND_FP = 1,        /* frame pointers only */
    LS_UNWIND_LIBUNWIND = 2, /* unw_backtrace for every stack */
    LS_UNWIND_COMPARE = 3,   /* both the default walk and libunwind's, counting where they differ (for tests) */
};
extern struct ls_config ls_config;
void ls_config_load(void);

/* ---- per-thread state (initial-exec TLS: no allocation, no lock on access). */
struct ls_thread {
    int guard;         /* nonzero while the shim runs on this thread: nested allocator calls pass through */
    uint32_t tid;      /* 0 until the first record; reset in a fork child */
    uint64_t read_pos; /* last read_pos seen: always <= the real one, so a space check on it is conservative */
    uintptr_t stack_lo, stack_hi; /* the stack this thread runs on; 0, 0 until known (stackbounds.c) */
    uintptr_t entry_fp;           /* the frame of the wrapper that took the guard: walks start there */
    uint32_t maps_reads;          /* /proc/self/maps reads this thread made looking for its stack */
    uint32_t skipped;             /* records this thread skipped for a reader found gone, not yet counted again */
    struct ls_live_undo {         /* a realloc's pending free took this block out of the live table */
        uint64_t size, time_ns;
        uint32_t stack_id;
        uint8_t fn, valid;
    } live_undo;
};
#define LS_GUARD_ON 1
#define LS_GUARD_QUIET 0x10000 /* a bit: the shim's own libc calls: nested allocator calls pass through, not counted */
extern __thread struct ls_thread ls_tls;

/* ---- ring.c: the memfd ring and its writer. */
struct ls_ring {
    lr_header *hdr;
    unsigned char *data; /* mapped twice back to back */
    uint64_t size;
    void *map_base;
    size_t map_len;
    int fd;
    uint32_t flags;        /* our copy of hdr->flags: the reader may scribble on the header */
    uint64_t start_mono;   /* our copy of hdr->start_monotonic_ns */
};
extern struct ls_ring ls_ring;

enum { LS_OK = 0, LS_RETRY = 1, LS_DROP = 2 };
#define LS_ANY_GEN 0xffffffffu

int ls_ring_create(uint32_t gen, int expect_collector); /* 0 on success; nothing is left behind on failure */
void ls_ring_forget(void);        /* fork child: drop the parent's ring without touching it */
/* Asks for the cursor's line in exclusive state before reading it: the CAS that follows then does not
 * need a second transfer between cores (prefetchw is a no-op on CPUs that lack it). */
static inline void ls_prefetch_cursor(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("prefetchw %0" ::"m"(ls_ring.hdr->cursor));
#endif
}
static inline uint32_t ls_ring_gen(void) {
    ls_prefetch_cursor();
    return LR_CURSOR_GEN(lr_load_acquire_u64(&ls_ring.hdr->cursor));
}
int ls_ring_reserve_slow(uint32_t gen, uint32_t len, unsigned char **rec, uint64_t *end);
/* Reserves len bytes in generation gen (or LS_ANY_GEN): LS_OK with the record's place and end position,
 * LS_RETRY when the generation moved on, LS_DROP when there is no room and no reader to make some.
 * The fast path is one CAS; a full ring, a lost race or a new generation take the slow one. */
static inline int ls_ring_reserve(uint32_t gen, uint32_t len, unsigned char **rec, uint64_t *end) {
    lr_header *h = ls_ring.hdr;
    uint64_t c = lr_load_acquire_u64(&h->cursor), p = LR_CURSOR_POS(c);
    if (LS_LIKELY((gen == LS_ANY_GEN || LR_CURSOR_GEN(c) == gen) &&
                  ((p + len - ls_tls.read_pos) & LR_POS_MASK) <= ls_ring.size &&
                  lr_cas_u64(&h->cursor, &c, LR_CURSOR(LR_CURSOR_GEN(c), p + len)))) {
        *rec = ls_ring.data + (p & (ls_ring.size - 1)); /* may run into the second mapping: that is the point */
        *end = (p + len) & LR_POS_MASK;
        return LS_OK;
    }
    return ls_ring_reserve_slow(gen, len, rec, end);
}
void ls_ring_wake(uint64_t end);
void ls_ring_lost(uint64_t events, uint64_t bytes);
void ls_ring_count(uint64_t *counter);
void ls_ring_wait_reader(void); /* LR_FLAG_EXPECT_COLLECTOR: until a reader claims the ring, or the grace ends */
uint64_t ls_now_coarse(void);
uint32_t ls_tid_slow(void);
static inline uint32_t ls_tid(void) { return LS_LIKELY(ls_tls.tid) ? ls_tls.tid : ls_tid_slow(); }

static inline void ls_commit(unsigned char *rec, uint32_t size) {
    lr_store_release_u32(&((lr_record *)rec)->size, size); /* the reader's acquire load of size sees every field */
}
static inline void ls_after_commit(uint64_t end) {
    /* relaxed: a wake missed through store/load reordering costs the reader at most its sleep timeout */
    if (LS_UNLIKELY(__atomic_load_n(&ls_ring.hdr->reader_sleeping, __ATOMIC_RELAXED))) ls_ring_wake(end);
}
static inline void ls_rec_header(unsigned char *rec, uint8_t type, uint8_t fn, uint16_t flags) {
    lr_record *h = (lr_record *)rec;
    h->type = type;
    h->fn = fn;
    h->flags = flags;
}

/* ---- stackbounds.c: where a walk may read. */
struct ls_range {
    uintptr_t lo, hi;
};
int ls_stack_range_slow(uintptr_t sp, struct ls_range *r);
/* 1 and the bounds of the stack `sp` is on; 0 when unknown (the caller then lets libunwind walk). */
static inline int ls_stack_range(uintptr_t sp, struct ls_range *r) {
    if (LS_LIKELY(sp - ls_tls.stack_lo < ls_tls.stack_hi - ls_tls.stack_lo)) {
        r->lo = ls_tls.stack_lo;
        r->hi = ls_tls.stack_hi;
        return 1;
    }
    return ls_stack_range_slow(sp, r);
}

/* ---- cfi.c and unwind.c: a frame's unwind rule (x86-64: the return address is at CFA - 8), its cache,
 * and the walks. Each walk fills buf with return addresses, innermost first, the shim's own cut; it
 * returns how many, or -1 when this stack needs libunwind. */
enum ls_rule_kind {
    LS_R_EMPTY = 0,
    LS_R_SP,       /* CFA = rsp + cfa_off */
    LS_R_BP,       /* CFA = rbp + cfa_off */
    LS_R_BP_DEREF, /* CFA = *(rbp + cfa_off): a function that realigned its stack */
    LS_R_END,      /* the return address is undefined: the outermost frame */
    LS_R_SIGNAL,   /* the signal trampoline: the registers are in the ucontext at rsp */
    LS_R_NOINFO,   /* no unwind information: generated code; guessed as a frame-pointer frame */
    LS_R_FALLBACK, /* unwind information this walker does not model */
};
struct ls_rule {
    int32_t cfa_off;
    int16_t bp_off; /* where the caller's rbp is saved, from the CFA, when LS_RULE_BP_SAVED */
    uint8_t kind;   /* enum ls_rule_kind */
    uint8_t flags;
};
#define LS_RULE_BP_SAVED 1u /* else the caller's rbp is the one we have */
#define LS_RULE_OWN 2u      /* the address is the shim's own: the frame is walked through, not kept */
#define LS_RULE_BP_AT_BP 4u /* LS_R_BP_DEREF only: the caller's rbp is saved at rbp + bp_off, not CFA + bp_off */
void ls_cfi_rule(uintptr_t pc, struct ls_rule *out); /* pc: the call instruction's address, or an exact ip */
int ls_unwind_init(uintptr_t text_lo, uintptr_t text_hi);
int ls_unwind_cfi(uint64_t *buf, int want, uint64_t *mix); /* also sums ls_frame_mix of what it keeps */
int ls_unwind_fp(uint64_t *buf, int want);
int ls_unwind_libunwind(uint64_t *buf, int want);
void ls_unwind_flush(void); /* after a dlclose; the shim's own rule cache goes by ls_modgen */

/* ---- stacks.c: capture and the lock-free dedup table. A stack's hash is a sum of per-frame mixes (so the
 * multiplies run in parallel, and the walk can add them as it goes) finished by stacks.c. */
static inline uint64_t ls_frame_mix(uint64_t ip, uint64_t i) {
    /* The position goes into every bit, not only above the address (i << 50 did): a product's low bits see
     * only its input's low bits, so recursion through two call sites (the same two return addresses at every
     * level) summed to one of a few table homes per depth, and probe runs grew to thousands of slots. */
    uint64_t x = (ip ^ i * 0x9e3779b97f4a7c15ull) * 0xff51afd7ed558ccdull;
    return x ^ (x >> 29);
}
/* The interned stack is lr_stack_node (leakring.h): its pool lives in the live table's memfd, where a
 * collector that attaches late reads it. */
int ls_stacks_init(void);
lr_stack_node *ls_stack_capture(void); /* NULL: no stack (table full or capture failed) */
uint32_t ls_stack_record_size(const lr_stack_node *s);
void ls_stack_write(unsigned char *rec, const lr_stack_node *s);
void ls_stacks_used(uint32_t *next_id, uint64_t *pool_words); /* for the fork child's copy of the live table */

/* ---- modules.c: the loaded objects, their records, dlclose. */
int ls_modules_init(void);
void ls_modules_refresh(void); /* rescans when the loader reports objects added or removed */
int ls_modules_send(uint32_t gen);                         /* LS_OK, LS_RETRY or LS_DROP */
void ls_modules_after_dlclose(void);
void ls_modules_lock(void);
void ls_modules_unlock(void);
extern uint32_t ls_modgen; /* bumped on every dlclose: salts stack hashes so reused ranges get new ids */

/* ---- livetable.c: the live table (leakring.h), kept whether or not a collector is attached. */
struct ls_live {
    lr_live_header *hdr; /* NULL: no table (creation failed); every call below is then a no-op */
    unsigned char *base;
    int fd;
};
extern struct ls_live ls_live;
int ls_live_init(void);         /* after the ring: the header names the ring it belongs to */
int ls_live_fork_child(void);   /* after the child's new ring: a copy of the table of its own; -1: none */
void ls_live_insert(uint64_t addr, uint64_t size, uint32_t stack_id, uint8_t fn, uint64_t time_ns);
void ls_live_prefetch(uint64_t addr); /* the insert's home slot, a random miss, fetched while the stack is walked */
void ls_live_remove(uint64_t addr, struct ls_live_undo *out); /* out (may be NULL): what was removed */
void ls_live_restore(uint64_t addr, struct ls_live_undo *u);  /* a failed realloc: its block is live again */
uint64_t *ls_live_pool(uint64_t *words);                      /* the stack pool in shared memory, or NULL */
void ls_live_index_stack(uint32_t id, uint64_t word_off);     /* a complete node: readable by id from now on */
/* Module log; the caller holds the module lock. */
void ls_live_log_module(uint32_t id, const char *path, uint16_t path_len, const uint8_t *build_id, uint8_t build_id_len,
                        uint64_t bias, uint64_t lo, uint64_t hi);
void ls_live_log_unmodule(uint32_t id);

/* Ring records are written only while a reader is there to read them; without one the live table alone
 * keeps the state. Called after the table changed (its seq_cst CAS orders this load after it). */
int ls_ring_wanted_slow(void);
extern uint64_t ls_ring_gone_beat; /* the heartbeat of a reader found gone: no records while it stays the same */
void ls_ring_skip_counted(int back); /* one lost event per thread as it starts skipping, and as it stops */
static inline int ls_ring_wanted(void) {
    if (LS_LIKELY(lr_load_acquire_i32(&ls_ring.hdr->reader_pid) != 0)) {
        /* Relaxed: a stale beat read here only delays by one record the switch either way. */
        if (LS_LIKELY(__atomic_load_n(&ls_ring.hdr->reader_heartbeat_ns, __ATOMIC_RELAXED) !=
                      __atomic_load_n(&ls_ring_gone_beat, __ATOMIC_RELAXED))) {
            /* Back: count once more, so a skip after the reader's resync point still makes it resync. */
            if (LS_UNLIKELY(ls_tls.skipped)) ls_ring_skip_counted(1);
            return 1;
        }
        if (!ls_tls.skipped) ls_ring_skip_counted(0);
        return 0;
    }
    return ls_ring_wanted_slow();
}
/* The app's munmap(addr, len) covers part of the ring: 1 after tracking stopped and the rest was unmapped. */
int ls_ring_unmap_request(void *addr, size_t len, int *result);

/* ---- handshake.c: handing a new ring to the collector that follows us (leakhandshake.h). */
int ls_handshake_connect(int kind);      /* a connected socket when this image or fork child is followed, else -1 */
int ls_handshake_send(int sock, int kind); /* sends ls_ring's fd and closes sock; 0 when delivered, else clears EXPECT */

/* ---- sampling.c: Poisson sampling by bytes (LEAKSHIM_SAMPLE_BYTES) and the set of sampled live blocks. */
extern __thread int64_t ls_sample_left;
/* The sampling interval once sampling is set up (stored with release order after the set exists and
 * before tracking is on), else 0: the sampled-out paths read only this, with acquire order. */
extern uint64_t ls_sample_interval;
static inline uint64_t ls_sampling(void) { return __atomic_load_n(&ls_sample_interval, __ATOMIC_ACQUIRE); }
int ls_sample_slow(int64_t left);
int ls_sampling_init(void); /* maps the sampled-block set; -1 when it cannot (then nothing is sampled) */
void ls_sampled_add(const void *p);
int ls_sampled_remove(const void *p); /* 1 when p was recorded (or may have been): its free is recorded too */
#define LS_SET_BUCKETS (1u << 16)
/* The free-side filter, one byte per bucket of the set: how many sampled blocks the bucket holds (at most
 * 7), LS_FILTER_OVERFLOWED once one found no slot there, LS_FILTER_PINNED for a bucket whose frees must
 * always reach the tracked body (NULL's, the bootstrap arena's); and, without sampling, all ones from
 * init on, so every free is looked at. Static: the free wrapper reads one byte at a link-time address. */
#define LS_FILTER_OVERFLOWED 0x80u
#define LS_FILTER_PINNED 0x40u
extern uint8_t ls_sampled_filter[LS_SET_BUCKETS];
static inline uint32_t ls_sampled_bucket(const void *ptr) {
    /* Neighbouring blocks land in neighbouring buckets (the set's working set follows the heap's), and the
       page and MiB bits are folded in so page-aligned blocks do not crowd a few buckets. */
    uintptr_t p = (uintptr_t)ptr;
    return (uint32_t)((p >> 4) ^ (p >> 12) ^ (p >> 20)) & (LS_SET_BUCKETS - 1);
}
/* 0 when p's free needs nothing from the shim (a block never recorded): one byte read, no write. */
static inline int ls_sampled_maybe(const void *p) {
    return __atomic_load_n(&ls_sampled_filter[ls_sampled_bucket(p)], __ATOMIC_RELAXED) != 0;
}
void ls_filter_pin(const void *p);   /* p's bucket always takes the tracked free (arena blocks) */
void ls_filter_track_all(void);      /* full tracking: every free takes the tracked body */
/* 1 when an allocation of n bytes is sampled out, counting its bytes: the caller passes it straight
 * through. 0 changes nothing (without sampling n < 0 is never true). */
static inline int ls_sample_skip(uint64_t n) {
    if (n >= ls_sampling()) return 0; /* without sampling: one load and one compare */
    int64_t left = ls_sample_left - (int64_t)n;
    if (LS_LIKELY(left > 0)) {
        ls_sample_left = left;
        return 1;
    }
    return 0;
}
/* 1 when an allocation of n bytes is to be recorded: always without sampling, and for n >= the interval.
 * The common sampled-out case is a subtraction on a thread-local counter: no call, no system call. */
static inline int ls_sample(uint64_t n) {
    uint64_t interval = ls_sampling();
    if (LS_LIKELY(interval == 0) || n >= interval) return 1;
    int64_t left = ls_sample_left - (int64_t)n;
    if (LS_LIKELY(left > 0)) {
        ls_sample_left = left;
        return 0;
    }
    return ls_sample_slow(left);
}

/* ---- small spinlock for the slow paths. */
#if defined(__x86_64__) || defined(__i386__)
#define ls_cpu_relax() __builtin_ia32_pause()
#else
#define ls_cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif
static inline void ls_spin_lock(int *l) {
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) ls_cpu_relax();
    }
}
static inline void ls_spin_unlock(int *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

#pragma GCC visibility pop

#endif
