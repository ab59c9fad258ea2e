/*
 * leakring.h: the one definition of the shared-memory ring between libleakshim.so (many writer
 * threads inside the traced, untrusted process) and leakcollect (one reader). Both sides include
 * this header; nothing here is written out a second time anywhere else.
 *
 * Memory: a sealed memfd named LR_MEMFD_NAME, created mode 0600 by the traced process.
 *   [0, LR_HEADER_SIZE)                      struct lr_header
 *   [LR_HEADER_SIZE, +data_size)             record data, data_size a power of two
 * Both sides map the data region twice, back to back, so a record never wraps: a record that starts
 * near the end simply continues into the second mapping (heapprofd's trick).
 *
 * Positions are byte counts modulo 2^48 (LR_POS_MASK). The data offset of position p is
 * p & (data_size - 1). The writer cursor also carries a 16-bit attach generation in its top bits.
 *
 * Writer protocol (shim):
 *   1. c = load_acquire(cursor); g = LR_CURSOR_GEN(c); p = LR_CURSOR_POS(c).
 *   2. Records that must precede this one in generation g (module table, a stack not yet sent in g)
 *      are reserved together with it.
 *   3. Space: ((p + len - read_pos) & LR_POS_MASK) <= data_size, else see "full ring" below.
 *   4. CAS(cursor, c, LR_CURSOR(g, p + len)); on failure go to 1 (the generation may have changed).
 *   5. Write every field except lr_record.size, then store_release(size). size != 0 means committed.
 *   A free/munmap record is committed *before* the real free/munmap runs, and an alloc/mmap record
 *   is reserved after the real call returns, so the reader always sees the free of p before the next
 *   allocation that reuses p, whichever threads did them.
 *   A stack's STACK record goes out in the same reservation as (just before) the first ALLOC/MMAP that
 *   uses it in a generation; all MODULE records of the live modules go out in that generation before
 *   the first STACK. Two threads racing may both send one stack in a generation: same id, same frames.
 *   Stack ids are 1-based and may have gaps; a dlclose makes the same frames get a new id afterwards.
 *   UNMODULE is sent only in a generation that carried the module's MODULE record.
 *
 * Reader protocol (collector):
 *   - Reads records in position order from read_pos. A zero size word means "not yet committed":
 *     wait. After consuming a range it zeroes it, then store_release(read_pos), so the writers of the
 *     next lap always find size == 0 until they commit.
 *   - Validates everything: size (>= the type's fixed part, multiple of 8, <= LR_MAX_RECORD and
 *     <= the bytes the cursor says are written), type, counts against size, ids, path lengths.
 *   - Launch mode (header flag LR_FLAG_EXPECT_COLLECTOR): reads from position 0, generation unchanged.
 *   - Attach mode: CAS-increments the generation in the cursor, which yields the start position P.
 *     Every record after P was reserved in the new generation, so modules and stacks it needs are
 *     re-sent after P. The reader waits for the records in [read_pos, P) to commit, zeroes them,
 *     and starts at P, after applying the live table's snapshot (what was live before P).
 *   - Sets reader_pid and refreshes reader_heartbeat_ns at least every LR_HEARTBEAT_NS / 4.
 *     On detach it stores reader_pid = 0.
 *
 * No reader: while reader_pid == 0 (and no collector is expected) writers write no records at all; the
 * live table (below) alone keeps what is live, for the collector that attaches later.
 * Full ring (slow path, syscalls allowed): if the heartbeat is older than LR_HEARTBEAT_NS, the record is
 * dropped and counted in lost_events, and writers then write no records at all until the heartbeat
 * changes (a killed collector costs the app no more than no collector). Otherwise the writer waits with backoff
 * while the reader keeps releasing space, and drops and counts once read_pos has not moved for
 * LEAKSHIM_MAX_WAIT_MS. The app never blocks on a collector that is gone or stuck.
 * A collector that sees lost_events grow resynchronizes from the live table.
 *
 * Wake-up: the reader sleeps (FUTEX_WAIT with a timeout) on reader_sleeping == 1 only when the ring is
 * empty. A writer that commits while reader_sleeping == 1 and the ring is at least 1/4 full wakes it.
 * No syscall per event. The waking writer exchanges reader_sleeping to 0 first, so one writer pays for
 * the FUTEX_WAKE; the reader clears it too when it wakes. The futex is shared (not _PRIVATE).
 *
 * Launch: the shim hands the ring's memfd to the collector that follows it (leakhandshake.h: the
 * launched process through every exec, and with --follow-children every descendant) and sets
 * LR_FLAG_EXPECT_COLLECTOR only when that hand-over was delivered. Such an app waits right after
 * creating the ring (and again at exit) until a reader sets reader_pid, at most until
 * LR_EXPECT_GRACE_NS after creation, so the collector reads its /proc maps while it is alive; the
 * collector holds the memfd, so it drains it even after the process crashed or exited. A shim no
 * collector follows never waits.
 *
 * Sampling (sample_bytes != 0, LEAKSHIM_SAMPLE_BYTES): each thread draws the distance to its next sample
 * point over the bytes it allocates from an exponential distribution with mean sample_bytes (a Poisson
 * process, heapprofd's scheme). An allocation of n < sample_bytes bytes gets an ALLOC record only when a
 * point falls inside it (probability 1 - exp(-n / sample_bytes)); one of n >= sample_bytes always does.
 * The shim keeps the recorded blocks in a set and sends a FREE only for them (or when the set could
 * not hold one), so unsampled blocks cost no record at all. mmap/munmap are never sampled. The
 * collector scales each sampled block by 1 / its probability.
 * Creation order: header filled, magic stored last, then the seals; unsealed means "not ready yet".
 *
 * munmap by the app of any part of the ring: the shim stores ring_unmapped_ns, stops tracking, and keeps
 * the ring mapped (threads already inside a wrapper still write to it), unmapping only the rest of the range.
 * fork: the child unmaps its parent's ring and creates its own, with cursor generation = the parent's
 * + 1 (so nothing counts as already sent), handed over (and expecting its collector) only with
 * --follow-children. exec starts a new ring, handed over as above.
 */
#ifndef LEAKRING_H
#define LEAKRING_H

#include <stdint.h>

#define LR_MAGIC 0x31474e494b41454cULL /* "LEAKING1" read as a little-endian u64 */
#define LR_VERSION 1u
#define LR_HEADER_SIZE 4096u
#define LR_MEMFD_NAME "leakshim-ring"

#define LR_DEFAULT_DATA_SIZE (16u << 20) /* LEAKSHIM_RING_SIZE overrides; rounded up to a power of two */
#define LR_MIN_DATA_SIZE (64u << 10)
#define LR_MAX_DATA_SIZE (1u << 30)
#define LR_MAX_RECORD 16384u             /* no record is larger; the reader rejects anything larger */
#define LR_DEFAULT_DEPTH 64u             /* LEAKSHIM_DEPTH overrides */
#define LR_MAX_DEPTH 256u
#define LR_MAX_PATH 4096u
#define LR_MAX_BUILD_ID 32u
#define LR_HEARTBEAT_NS 1000000000ull    /* a reader silent this long is treated as gone */
#define LR_EXPECT_GRACE_NS 5000000000ull /* how long a launched app waits for its collector to appear */

#define LR_POS_BITS 48
#define LR_POS_MASK ((1ull << LR_POS_BITS) - 1)
#define LR_CURSOR_POS(c) ((c) & LR_POS_MASK)
#define LR_CURSOR_GEN(c) ((uint32_t)((c) >> LR_POS_BITS))
#define LR_CURSOR(gen, pos) ((((uint64_t)(gen)) << LR_POS_BITS) | ((pos) & LR_POS_MASK))

/* lr_header.flags */
#define LR_FLAG_EXPECT_COLLECTOR 1u /* started by leakcollect: treat the reader as present from creation */

/* Stack id 0 means "no stack": capture failed or the shim's stack table was full. */
#define LR_NO_STACK 0u

typedef struct lr_header {
    /* Written once by the shim before the memfd is visible to anyone; the reader copies and checks them. */
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t data_size;
    uint32_t max_depth;
    int32_t pid;
    uint64_t start_realtime_ns;  /* CLOCK_REALTIME when the ring was created */
    uint64_t start_monotonic_ns; /* CLOCK_MONOTONIC then; record time_ns values use the same clock */
    uint32_t flags;
    uint32_t reserved0;
    uint64_t sample_bytes; /* LEAKSHIM_SAMPLE_BYTES: allocations are sampled by bytes with this mean interval
                              (see "Sampling" above); 0: every allocation is recorded */

    /* Writers only (CAS). */
    uint64_t cursor; /* LR_CURSOR(generation, write position) */
    uint8_t pad1[64 - 8];

    /* Reader only. */
    uint64_t read_pos;
    uint64_t reader_heartbeat_ns; /* CLOCK_MONOTONIC */
    int32_t reader_pid;
    uint32_t reserved1;
    uint8_t pad2[64 - 24];

    /* Futex word, on its own line because writers poll it after every commit. */
    uint32_t reader_sleeping;
    uint8_t pad3[64 - 4];

    /* Shim counters, atomic adds on slow paths only. */
    uint64_t lost_events;     /* records dropped: ring full with no live reader, or wait bound reached */
    uint64_t lost_bytes;      /* bytes of allocations whose records were dropped */
    uint64_t waits;           /* times a writer waited for the reader */
    uint64_t reentrant_calls; /* allocator calls made while the shim itself was running: not tracked */
    uint64_t stack_table_full;/* allocations charged to LR_NO_STACK because the stack table was full */
    uint64_t truncated_stacks;/* stacks cut at max_depth */
    uint64_t wait_ns;         /* time writers spent waiting for the reader on a full ring, summed over threads */
    uint64_t unwind_mismatches; /* LEAKSHIM_UNWIND=compare: stacks where the shim's walk and libunwind's differ */

    /* More shim counters. */
    uint64_t unwind_fallbacks; /* stacks the shim's own walk handed to libunwind (unmodelled unwind info) */
    uint64_t ring_unmapped_ns; /* CLOCK_MONOTONIC when the app munmapped this ring (0: never); the shim wrote nothing after */
    uint8_t pad5[64 - 16];
} lr_header;

_Static_assert(sizeof(lr_header) == 384, "lr_header layout is part of the protocol");
_Static_assert(__builtin_offsetof(lr_header, sample_bytes) == 56, "sampling interval ends the first line");
_Static_assert(__builtin_offsetof(lr_header, cursor) == 64, "cursor owns a cache line");
_Static_assert(__builtin_offsetof(lr_header, read_pos) == 128, "reader owns a cache line");
_Static_assert(__builtin_offsetof(lr_header, reader_sleeping) == 192, "futex word owns a cache line");
_Static_assert(__builtin_offsetof(lr_header, lost_events) == 256, "counters own a cache line");
_Static_assert(__builtin_offsetof(lr_header, unwind_fallbacks) == 320, "more counters");

/* Record types. */
enum lr_type {
    LR_T_ALLOC = 1,    /* struct lr_alloc */
    LR_T_FREE = 2,     /* struct lr_free */
    LR_T_MMAP = 3,     /* struct lr_mmap */
    LR_T_MUNMAP = 4,   /* struct lr_munmap */
    LR_T_UNDO = 5,     /* struct lr_undo: a realloc/mremap failed, restore what the pending free removed */
    LR_T_STACK = 6,    /* struct lr_stack */
    LR_T_MODULE = 7,   /* struct lr_module */
    LR_T_UNMODULE = 8, /* struct lr_unmodule */
};

/* Which allocator entry point produced a record (lr_record.fn). */
enum lr_fn {
    LR_FN_NONE = 0,
    LR_FN_MALLOC = 1,
    LR_FN_CALLOC = 2,
    LR_FN_REALLOC = 3,
    LR_FN_REALLOCARRAY = 4,
    LR_FN_POSIX_MEMALIGN = 5,
    LR_FN_ALIGNED_ALLOC = 6,
    LR_FN_MEMALIGN = 7,
    LR_FN_VALLOC = 8,
    LR_FN_PVALLOC = 9,
    LR_FN_FREE = 10,
    LR_FN_MMAP = 11,
    LR_FN_MUNMAP = 12,
    LR_FN_MREMAP = 13,
    LR_FN_COUNT = 14,
};

/* lr_record.flags */
#define LR_F_PENDING 0x1u   /* FREE/MUNMAP issued by realloc/mremap before the real call: an ALLOC/MMAP with
                               old_addr == addr, or an UNDO of addr, follows from the same thread.
                               realloc(p, 0) frees p for good: its FREE (fn REALLOC) is not pending, and a
                               minimal block an allocator returns instead is an ALLOC of size 0. */
#define LR_F_FILE 0x2u      /* MMAP: file-backed (not MAP_ANONYMOUS) */
#define LR_F_TRUNCATED 0x4u /* STACK: cut at max_depth */

/* Every record starts with this. size is the commit word: stored last, with release order. */
typedef struct lr_record {
    uint32_t size; /* total bytes including this header; a multiple of 8; 0 = not committed */
    uint8_t type;  /* enum lr_type */
    uint8_t fn;    /* enum lr_fn */
    uint16_t flags;
} lr_record;

typedef struct lr_alloc {
    lr_record h;
    uint32_t stack_id;
    uint32_t tid;
    uint64_t addr;
    uint64_t size;     /* bytes requested */
    uint64_t old_addr; /* realloc: the block it replaces (its pending FREE came earlier); else 0 */
    uint64_t time_ns;  /* CLOCK_MONOTONIC(_COARSE) */
} lr_alloc;

typedef struct lr_free {
    lr_record h; /* fn: FREE, or REALLOC/REALLOCARRAY for a realloc's free */
    uint64_t addr;
} lr_free;

/* Where an ALLOC's and a FREE's block address sit, for a reader that peeks at it ahead of decoding
   (compile-time constants in Swift; MemoryLayout.offset(of:) there was a lazy global per record). */
enum {
    LR_ALLOC_ADDR_OFFSET = __builtin_offsetof(lr_alloc, addr),
    LR_FREE_ADDR_OFFSET = __builtin_offsetof(lr_free, addr),
};

typedef struct lr_mmap {
    lr_record h;
    uint32_t stack_id;
    uint32_t tid;
    uint64_t addr;
    uint64_t len;      /* bytes as requested; the collector rounds to pages */
    uint64_t old_addr; /* mremap: the old start (its pending MUNMAP came earlier); else 0 */
    uint64_t time_ns;
    int32_t prot;      /* mremap: 0 (unknown) */
    int32_t map_flags; /* mmap's flags; mremap: its MREMAP_* flags, and LR_F_FILE is never set (the
                          region keeps the backing of the one it replaces) */
} lr_mmap;

typedef struct lr_munmap {
    lr_record h; /* fn: MUNMAP, or MREMAP for mremap's pending release */
    uint64_t addr;
    uint64_t len;
} lr_munmap;

typedef struct lr_undo {
    lr_record h; /* fn: REALLOC, REALLOCARRAY or MREMAP, the call whose pending release failed */
    uint64_t addr;
} lr_undo;

typedef struct lr_stack {
    lr_record h;
    uint32_t stack_id; /* stable for the life of the process; never LR_NO_STACK */
    uint32_t depth;    /* frames that follow; size == sizeof(lr_stack) + 8 * depth */
    uint64_t frames[]; /* return addresses, innermost first; the shim's own frames are already cut */
} lr_stack;

typedef struct lr_module {
    lr_record h;
    uint32_t module_id; /* stable for the life of the process */
    uint16_t path_len;  /* bytes of path that follow, no NUL; <= LR_MAX_PATH */
    uint8_t build_id_len;
    uint8_t reserved;
    uint64_t bias; /* load bias: runtime address = bias + ELF virtual address */
    uint64_t lo;   /* lowest runtime address of its PT_LOAD segments */
    uint64_t hi;   /* one past the highest */
    uint8_t build_id[LR_MAX_BUILD_ID];
    char path[];   /* size == round_up_8(sizeof(lr_module) + path_len) */
} lr_module;

typedef struct lr_unmodule {
    lr_record h;
    uint32_t module_id;
    uint32_t reserved;
} lr_unmodule;

_Static_assert(sizeof(lr_record) == 8, "record header");
_Static_assert(sizeof(lr_alloc) == 48, "alloc record");
_Static_assert(sizeof(lr_free) == 16, "free record");
_Static_assert(sizeof(lr_mmap) == 56, "mmap record");
_Static_assert(sizeof(lr_munmap) == 24, "munmap record");
_Static_assert(sizeof(lr_undo) == 16, "undo record");
_Static_assert(sizeof(lr_stack) == 16, "stack record");
_Static_assert(sizeof(lr_module) == 72, "module record");
_Static_assert(sizeof(lr_unmodule) == 16, "unmodule record");

static inline uint32_t lr_round8(uint32_t n) { return (n + 7u) & ~7u; }

/* Atomic accessors for both sides. Swift imports these; it has no other way to order plain shared memory. */
static inline uint64_t lr_load_acquire_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint32_t lr_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline int32_t lr_load_acquire_i32(const int32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void lr_store_release_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void lr_store_release_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void lr_store_release_i32(int32_t *p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int lr_cas_u64(uint64_t *p, uint64_t *expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/*
 * ---- The live table: what is live now, for a collector that attaches late or lost records. ----
 *
 * A second sealed memfd, LR_LIVE_MEMFD_NAME, created mode 0600 by the shim next to the ring and kept up to
 * date on every allocation and free whether or not a collector is attached. It holds:
 *   [0, LR_LIVE_HEADER_SIZE)            struct lr_live_header
 *   [LR_LIVE_MODLOG_OFF, +MODLOG_SIZE)   the module log: lr_module and lr_unmodule records (the ring's own
 *                                        format), appended under the shim's module lock; modlog_used bytes
 *                                        are committed (store_release after the record is complete)
 *   [LR_LIVE_STACKIDX_OFF, ...)          uint32_t per stack id (1 ..< LR_MAX_STACKS): the node's offset in the
 *                                        pool in 8-byte words, 0 = none; stored with release once the node is
 *                                        complete. Node contents never change afterwards.
 *   [LR_LIVE_POOL_OFF, +POOL_SIZE)       the shim's interned stacks, struct lr_stack_node, bump-allocated
 *   [LR_LIVE_SEG_OFF, LR_LIVE_FILE_SIZE) LR_LIVE_MAX_SEGMENTS hash segments of struct lr_live_slot; segment k
 *                                        has LR_LIVE_BASE_SLOTS << k slots at lr_live_segment_offset(k)
 * The file is sized once (sparse: a page costs memory only once touched) and sealed against shrinking and
 * growing. Segments are used in order; segment k+1 is activated (segments++) only when an insert finds no
 * free slot within LR_LIVE_PROBE slots of its home in segment k, so the touched memory grows with the peak
 * number of live blocks (about 2 * 32 bytes / load per block), never with the number of events.
 *
 * Slots: open addressing keyed by the block's address, linear probing bounded by LR_LIVE_PROBE, no locks.
 *   addr: LR_LIVE_EMPTY (never used), LR_LIVE_TOMB (freed, reusable), LR_LIVE_BUSY (being written), else the
 *         live block's address. Addresses are unique among live blocks (a free precedes the reuse of its
 *         address), so a key is in at most one slot of one segment.
 *   Insert: for each active segment newest first, probe; CAS(addr, EMPTY|TOMB -> BUSY) (seq_cst); seq += 1
 *           (odd); write size, time, stack, fn; seq += 1 (even, release); store_release(addr, key).
 *   Delete: probe each active segment newest first, stopping at EMPTY (an EMPTY slot never becomes EMPTY
 *           again once used, so nothing lies beyond it) or after LR_LIVE_PROBE; CAS(addr, key -> TOMB).
 *   Readers copy a slot as: a = acquire(addr), s = acquire(seq), fields, acquire fence, then seq and addr
 *   again: the copy holds when both are unchanged, s is even and a is a real address.
 *
 * Attach (and resync) without a race between the snapshot and the stream:
 *   - The shim changes the table *before* it reserves the ring record: insert, then reserve the ALLOC;
 *     delete, then reserve the FREE (both still before the real free, as the ring requires).
 *   - It writes ring records only while a reader is present (reader_pid != 0, or a launched app within its
 *     grace period); it checks that after the table change (the seq_cst CAS orders the two).
 *   - The collector stores reader_pid, bumps the generation (CAS, position P), then reads the table.
 *   So every allocation or free whose ring record lies before P, or that skipped the ring because no reader
 *   was there, is already visible in the table the collector reads; everything else has its record after
 *   P. The collector applies the snapshot first, then the ring from P. A block the snapshot and the ring
 *   both carry is one allocation seen twice (same address, size, stack and time): applied once. A FREE
 *   after P of a block the snapshot did not see is an unmatched free, as after any attach.
 *   A resync is the same step again in the middle of a collection, after the ring lost records: bump the
 *   generation, read the table, make the collector's live heap blocks equal to it, follow from the new P.
 *   mmap regions are not in the table: a late attach sees heap blocks from before it, not regions.
 *
 * fork: the child copies the used part of the table into a new memfd mapped at the same address.
 */
#define LR_LIVE_MEMFD_NAME "leakshim-live"
#define LR_LIVE_MAGIC 0x31564c4b41454cULL /* "LEAKLV1" read as a little-endian u64 */
#define LR_LIVE_VERSION 1u
#define LR_LIVE_HEADER_SIZE 4096u
#define LR_MAX_STACKS ((1u << 20) / 4 * 3) /* stack ids are < this; the shim's dedup table keeps probes short */
#define LR_LIVE_MODLOG_OFF 4096ull
#define LR_LIVE_MODLOG_SIZE (1ull << 20)
#define LR_LIVE_STACKIDX_OFF (LR_LIVE_MODLOG_OFF + LR_LIVE_MODLOG_SIZE)
#define LR_LIVE_STACKIDX_SIZE (((uint64_t)LR_MAX_STACKS * 4u + 4095u) & ~4095ull)
#define LR_LIVE_POOL_OFF (LR_LIVE_STACKIDX_OFF + LR_LIVE_STACKIDX_SIZE)
#define LR_LIVE_POOL_SIZE (256ull << 20)
#define LR_LIVE_SEG_OFF (LR_LIVE_POOL_OFF + LR_LIVE_POOL_SIZE)
#define LR_LIVE_BASE_SLOTS 4096ull
#define LR_LIVE_MAX_SEGMENTS 15u
#define LR_LIVE_PROBE 16u
#define LR_LIVE_FILE_SIZE (LR_LIVE_SEG_OFF + 32ull * LR_LIVE_BASE_SLOTS * ((1ull << LR_LIVE_MAX_SEGMENTS) - 1))

#define LR_LIVE_EMPTY 0ull
#define LR_LIVE_TOMB 1ull
#define LR_LIVE_BUSY 2ull
#define LR_LIVE_FIRST_ADDR 3ull /* addr values from here on are live blocks */

/* The layout as functions: Swift does not import macros built from other macros. */
static inline uint64_t lr_live_file_size(void) { return LR_LIVE_FILE_SIZE; }
static inline uint64_t lr_live_modlog_offset(void) { return LR_LIVE_MODLOG_OFF; }
static inline uint64_t lr_live_modlog_size(void) { return LR_LIVE_MODLOG_SIZE; }
static inline uint64_t lr_live_stackidx_offset(void) { return LR_LIVE_STACKIDX_OFF; }
static inline uint64_t lr_live_pool_offset(void) { return LR_LIVE_POOL_OFF; }
static inline uint64_t lr_live_pool_size(void) { return LR_LIVE_POOL_SIZE; }
static inline uint32_t lr_max_stacks(void) { return LR_MAX_STACKS; }
static inline uint64_t lr_live_segment_offset(uint32_t k) {
    return LR_LIVE_SEG_OFF + 32ull * LR_LIVE_BASE_SLOTS * ((1ull << k) - 1);
}
static inline uint64_t lr_live_segment_slots(uint32_t k) { return LR_LIVE_BASE_SLOTS << k; }
static inline uint64_t lr_live_hash(uint64_t addr) {
    uint64_t x = (addr >> 4) * 0x9e3779b97f4a7c15ull; /* malloc's 16-byte alignment carries no information */
    return x ^ (x >> 31);
}

typedef struct lr_live_header {
    /* Written once before the memfd is sealed. */
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size;
    int32_t pid;
    uint32_t max_depth;
    uint64_t ring_start_monotonic_ns; /* the ring it belongs to: that ring's lr_header.start_monotonic_ns */
    uint8_t pad0[64 - 40];

    /* Shim, grow-only. */
    uint32_t segments;    /* active segments, 1 ..= LR_LIVE_MAX_SEGMENTS */
    uint32_t reserved0;
    uint64_t modlog_used; /* committed bytes of the module log */
    uint8_t pad1[64 - 16];

    /* Shim counters (slow paths). */
    uint64_t table_full;  /* allocations the table could not hold: a snapshot misses them */
    uint64_t modlog_full; /* module records that did not fit the log */
    uint8_t pad2[64 - 16];
} lr_live_header;

typedef struct lr_live_slot {
    uint64_t addr;     /* see above */
    uint64_t size;     /* bytes requested */
    uint64_t time_ns;  /* CLOCK_MONOTONIC(_COARSE) of the allocation, as in its ALLOC record */
    uint32_t stack_id; /* LR_NO_STACK or an id in the stack index */
    uint8_t fn;        /* enum lr_fn */
    uint8_t reserved;
    uint16_t seq;      /* odd while the fields are being written */
} lr_live_slot;

/* A stack the shim interned: in the pool at the word offset the stack index gives for its id. */
typedef struct lr_stack_node {
    uint64_t hash;
    uint32_t id;
    uint32_t sent_gen; /* shim only: ring generation + 1 in which its STACK record went out; 0 = never */
    uint32_t modgen;   /* shim only */
    uint16_t depth;    /* frames that follow */
    uint16_t truncated;
    uint64_t frames[];
} lr_stack_node;

_Static_assert(sizeof(lr_live_header) == 192, "live header layout");
_Static_assert(sizeof(lr_live_slot) == 32, "live slot layout");
_Static_assert(sizeof(lr_stack_node) == 24, "stack node layout");
_Static_assert(LR_LIVE_SEG_OFF % 4096 == 0, "segments start on a page");

static inline uint16_t lr_load_acquire_u16(const uint16_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void lr_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }

#endif
