/* stacks.c: captures the caller's stack (unwind.c) and gives each distinct stack a stable id through a
 * lock-free open-addressing table whose memory comes from mmap, never from the allocator we wrap. */
#include <errno.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>

#include "shim.h"

#define TABLE_SLOTS (1u << 20)
_Static_assert(LR_MAX_STACKS <= TABLE_SLOTS / 4 * 3, "keep probes short");
#define SLACK 8                          /* room for the shim's own frames in libunwind's walk */

static uint32_t *table;     /* slot -> node offset in pool words; 0 = empty */
static uint64_t *pool;      /* nodes, bump-allocated; word 0 unused so that offset 0 can mean empty */
static uint64_t pool_words; /* capacity */
static uint64_t pool_used = 1;
static uint32_t next_id = 1;
static uintptr_t own_lo, own_hi; /* the shim's executable segment */

static int find_own_text(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    uintptr_t self = (uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && self - lo < hi - lo) {
            own_lo = lo;
            own_hi = hi;
            return 1;
        }
    }
    return 0;
}

static void *map_anon(size_t len) {
    void *p = ls_sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int ls_stacks_init(void) {
    table = map_anon(TABLE_SLOTS * sizeof(uint32_t));
    pool = ls_live_pool(&pool_words); /* shared, so that a collector attaching late reads the stacks */
    for (uint64_t bytes = 256ull << 20; !pool && bytes >= (16u << 20); bytes /= 2) { /* address space only */
        pool = map_anon(bytes);
        pool_words = bytes / 8;
    }
    if (!table || !pool) return -1;
    dl_iterate_phdr(find_own_text, (void *)(uintptr_t)ls_stacks_init);
    if (own_hi == 0) return -1;
    return ls_unwind_init(own_lo, own_hi);
}

static uint64_t frames_mix(const uint64_t *f, uint32_t n) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += ls_frame_mix(f[i], i);
    return sum;
}

static uint64_t finish_hash(uint64_t sum, uint32_t n, uint32_t modgen, int truncated) {
    uint64_t h = sum + (0x9e3779b97f4a7c15ull ^ ((uint64_t)modgen << 1 | (uint64_t)truncated) ^ n);
    h ^= h >> 32;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static inline int same(const lr_stack_node *s, uint64_t h, const uint64_t *f, uint32_t n, int truncated,
                       uint32_t modgen) {
    if (s->hash != h || s->depth != n || s->truncated != truncated || s->modgen != modgen) return 0;
    for (uint32_t i = 0; i < n; i++) /* short: a loop beats a call to memcmp */
        if (s->frames[i] != f[i]) return 0;
    return 1;
}

/* A complete node, not yet visible to anyone; 0 when the table or its pool is full. */
static uint32_t new_node(uint64_t h, const uint64_t *f, uint32_t n, int truncated, uint32_t modgen) {
    uint64_t words = (sizeof(lr_stack_node) + 8u * n) / 8;
    uint64_t off = __atomic_fetch_add(&pool_used, words, __ATOMIC_RELAXED);
    uint32_t id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
    if (off + words > pool_words || off > UINT32_MAX - words || id >= LR_MAX_STACKS) return 0;
    lr_stack_node *s = (lr_stack_node *)(pool + off);
    s->hash = h;
    s->id = id;
    s->sent_gen = 0;
    s->modgen = modgen;
    s->depth = (uint16_t)n;
    s->truncated = (uint16_t)truncated;
    memcpy(s->frames, f, 8u * n);
    ls_live_index_stack(id, off);
    /* Before anyone can use this stack, the modules its frames lie in must be known, so they are sent first. */
    int saved = errno;
    ls_modules_refresh();
    errno = saved;
    return (uint32_t)off;
}

__attribute__((noinline)) static lr_stack_node *intern(const uint64_t *f, uint32_t n, int truncated, uint64_t sum) {
    uint32_t modgen = __atomic_load_n(&ls_modgen, __ATOMIC_ACQUIRE);
    uint64_t h = finish_hash(sum, n, modgen, truncated);
    uint32_t mine = 0;
    for (uint32_t probe = 0, i = (uint32_t)h & (TABLE_SLOTS - 1); probe < TABLE_SLOTS;
         probe++, i = (i + 1) & (TABLE_SLOTS - 1)) {
        uint32_t off = __atomic_load_n(&table[i], __ATOMIC_ACQUIRE); /* pairs with the release CAS below */
        if (off == 0) {
            if (!mine && !(mine = new_node(h, f, n, truncated, modgen))) break;
            if (__atomic_compare_exchange_n(&table[i], &off, mine, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE)) {
                if (truncated) ls_ring_count(&ls_ring.hdr->truncated_stacks);
                return (lr_stack_node *)(pool + mine);
            }
            /* Lost the slot: off is the winner's node now; ours is wasted, so ids can have gaps. */
        }
        lr_stack_node *s = (lr_stack_node *)(pool + off);
        if (same(s, h, f, n, truncated, modgen)) return s;
    }
    ls_ring_count(&ls_ring.hdr->stack_table_full);
    return NULL;
}

/* LEAKSHIM_UNWIND=compare: libunwind's stack is kept; a walk of ours that differs from it is counted.
 * A walk that hands the stack to libunwind (-1) agrees by definition. */
static int compare(uint64_t *buf, uint32_t depth) {
    uint64_t mine[depth + 1], mix;
    int n = ls_unwind_cfi(mine, (int)depth + 1, &mix);
    int got = ls_unwind_libunwind(buf, (int)(depth + 1 + SLACK));
    if (got > (int)depth + 1) got = (int)depth + 1;
    if (n >= 0 && (n != got || memcmp(mine, buf, 8u * (uint32_t)n) != 0 || mix != frames_mix(buf, (uint32_t)got)))
        ls_ring_count(&ls_ring.hdr->unwind_mismatches);
    return got;
}

/* This thread's last stack, kept beside its node: a program allocates in loops, so the next stack is most
 * often the same one, and comparing it here (lines this thread just wrote) skips the shared table's slot
 * and the node's frames, which at 100k+ stacks are cache and TLB misses. Only this thread touches it, and
 * a signal handler cannot capture while the guard is held: plain loads and stores. */
#define LAST_FRAMES 64
static __thread struct {
    lr_stack_node *node;
    uint64_t sum;
    uint32_t n, modgen;
    int truncated;
    uint64_t frames[LAST_FRAMES];
} last;

static lr_stack_node *intern_cached(const uint64_t *f, uint32_t n, int truncated, uint64_t sum) {
    uint32_t modgen = __atomic_load_n(&ls_modgen, __ATOMIC_ACQUIRE); /* a dlclose since makes it another stack */
    if (last.node && last.sum == sum && last.n == n && last.truncated == truncated && last.modgen == modgen) {
        uint32_t i = 0;
        while (i < n && last.frames[i] == f[i]) i++;
        if (i == n) return last.node;
    }
    lr_stack_node *s = intern(f, n, truncated, sum);
    if (s && n <= LAST_FRAMES) {
        last.node = s;
        last.sum = sum;
        last.n = n;
        last.truncated = truncated;
        last.modgen = modgen;
        memcpy(last.frames, f, 8u * n);
    }
    return s;
}

/* Walks one frame past the depth limit, so that a cut stack is known to be cut. libunwind also sees the
 * shim's own frames (at most SLACK) before they are dropped. */
lr_stack_node *ls_stack_capture(void) {
    uint32_t depth = ls_config.depth;
    uint64_t buf[depth + 1 + SLACK], sum = 0;
    int got = -1, summed = 0;
    if (LS_LIKELY(ls_config.unwind == LS_UNWIND_CFI)) {
        got = ls_unwind_cfi(buf, (int)depth + 1, &sum);
        summed = got >= 0;
        if (!summed) ls_ring_count(&ls_ring.hdr->unwind_fallbacks);
    } else if (ls_config.unwind == LS_UNWIND_FP) {
        got = ls_unwind_fp(buf, (int)depth + 1);
        if (got < 2) got = -1;
    } else if (ls_config.unwind == LS_UNWIND_COMPARE) {
        got = compare(buf, depth);
    }
    if (got < 0) got = ls_unwind_libunwind(buf, (int)(depth + 1 + SLACK));
    if (got <= 0) return NULL;
    uint32_t n = (uint32_t)got;
    if (!summed) sum = frames_mix(buf, n);
    int truncated = n > depth;
    for (; n > depth; n--) sum -= ls_frame_mix(buf[n - 1], n - 1); /* the frames past the limit are not kept */
    return intern_cached(buf, n, truncated, sum);
}

void ls_stacks_used(uint32_t *ids, uint64_t *words) {
    *ids = __atomic_load_n(&next_id, __ATOMIC_RELAXED);
    *words = __atomic_load_n(&pool_used, __ATOMIC_RELAXED);
}

uint32_t ls_stack_record_size(const lr_stack_node *s) { return (uint32_t)sizeof(lr_stack) + 8u * s->depth; }

void ls_stack_write(unsigned char *rec, const lr_stack_node *s) {
    lr_stack *r = (lr_stack *)rec;
    ls_rec_header(rec, LR_T_STACK, LR_FN_NONE, s->truncated ? LR_F_TRUNCATED : 0);
    r->stack_id = s->id;
    r->depth = s->depth;
    memcpy(r->frames, s->frames, 8u * s->depth);
}
