/* livetable.c: the live table (leakring.h, "The live table"): every live heap block with its stack, kept
 * in a sealed memfd whether or not a collector is attached, so that a collector that attaches late sees the
 * blocks allocated before it, and one that lost records can resynchronize. The hot path is a hash, a few
 * probes and one CAS: no lock, no system call, no allocation. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leakring_sys.h"
#include "shim.h"

struct ls_live ls_live = {.fd = -1};

static inline lr_live_slot *segment(uint32_t k) { return (lr_live_slot *)(ls_live.base + lr_live_segment_offset(k)); }

/* A new sized, mode-0600 memfd mapped at `at` (MAP_FIXED) or anywhere; MAP_FAILED on failure (fd closed). */
static unsigned char *map_file(int *fd_out, void *at) {
    struct rlimit lim; /* a file-size limit below the table's size would make ftruncate raise SIGXFSZ in the app */
    if (getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < LR_LIVE_FILE_SIZE) return MAP_FAILED;
    int fd = lr_memfd_create(LR_LIVE_MEMFD_NAME, LR_MFD_CLOEXEC | LR_MFD_ALLOW_SEALING);
    if (fd < 0) return MAP_FAILED;
    unsigned char *base = MAP_FAILED;
    if (fchmod(fd, 0600) == 0 && ftruncate(fd, (off_t)LR_LIVE_FILE_SIZE) == 0) /* sparse: no memory yet */
        base = ls_sys_mmap(at, LR_LIVE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | (at ? MAP_FIXED : 0),
                           fd, 0);
    if (base == MAP_FAILED) {
        close(fd);
        return MAP_FAILED;
    }
    *fd_out = fd;
    return base;
}

/* Header last (magic with release), then the seals: unsealed means "not ready yet", as for the ring. */
static int publish(unsigned char *base, int fd) {
    lr_live_header *h = (lr_live_header *)base;
    h->version = LR_LIVE_VERSION;
    h->header_size = LR_LIVE_HEADER_SIZE;
    h->file_size = LR_LIVE_FILE_SIZE;
    h->pid = getpid();
    h->max_depth = ls_config.depth;
    h->ring_start_monotonic_ns = ls_ring.start_mono;
    if (h->segments == 0) h->segments = 1;
    lr_store_release_u64(&h->magic, LR_LIVE_MAGIC);
    if (lr_add_seals(fd, LR_SEALS_APPLIED) != 0) return -1;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 500); /* out of the way of apps that dup2 over low fds */
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    ls_live = (struct ls_live){.hdr = h, .base = base, .fd = fd};
    return 0;
}

int ls_live_init(void) {
    int fd;
    unsigned char *base = map_file(&fd, NULL);
    if (base == MAP_FAILED) return -1;
    if (publish(base, fd) != 0) {
        ls_sys_munmap(base, LR_LIVE_FILE_SIZE);
        close(fd);
        return -1;
    }
    return 0;
}

/* Only one thread exists in the child: the parent's shared table is copied (its used parts) into a new
 * memfd, which then replaces the old mapping at the same address so that every pointer stays valid.
 * -1: no copy; the caller then stops tracking in the child, which must never write the parent's table. */
int ls_live_fork_child(void) {
    if (!ls_live.hdr) return 0;
    unsigned char *old = ls_live.base;
    int old_fd = ls_live.fd, fd;
    ls_live = (struct ls_live){.fd = -1};
    unsigned char *copy = map_file(&fd, NULL);
    if (copy == MAP_FAILED) return -1;
    lr_live_header *oh = (lr_live_header *)old, *nh = (lr_live_header *)copy;
    uint32_t segs = oh->segments <= LR_LIVE_MAX_SEGMENTS ? oh->segments : LR_LIVE_MAX_SEGMENTS;
    uint64_t used = oh->modlog_used <= LR_LIVE_MODLOG_SIZE ? oh->modlog_used : 0;
    uint32_t ids;
    uint64_t words;
    ls_stacks_used(&ids, &words);
    if (ids > LR_MAX_STACKS) ids = LR_MAX_STACKS;
    if (words > LR_LIVE_POOL_SIZE / 8) words = LR_LIVE_POOL_SIZE / 8;
    nh->segments = segs;
    nh->modlog_used = used;
    nh->table_full = oh->table_full;
    memcpy(copy + LR_LIVE_MODLOG_OFF, old + LR_LIVE_MODLOG_OFF, used);
    memcpy(copy + LR_LIVE_STACKIDX_OFF, old + LR_LIVE_STACKIDX_OFF, 4ull * ids);
    memcpy(copy + LR_LIVE_POOL_OFF, old + LR_LIVE_POOL_OFF, 8 * words);
    memcpy(copy + LR_LIVE_SEG_OFF, old + LR_LIVE_SEG_OFF, lr_live_segment_offset(segs) - LR_LIVE_SEG_OFF);
    ls_sys_munmap(copy, LR_LIVE_FILE_SIZE);
    /* MAP_FIXED swaps the parent's shared pages for ours in one step: the parent's table is untouched. */
    copy = ls_sys_mmap(old, LR_LIVE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, 0);
    if (copy == MAP_FAILED) {
        close(fd);
        return -1;
    }
    close(old_fd);
    return publish(copy, fd);
}

uint64_t *ls_live_pool(uint64_t *words) {
    if (!ls_live.hdr) return NULL;
    *words = LR_LIVE_POOL_SIZE / 8;
    return (uint64_t *)(ls_live.base + LR_LIVE_POOL_OFF);
}

void ls_live_index_stack(uint32_t id, uint64_t word_off) {
    if (!ls_live.hdr || id == LR_NO_STACK || id >= LR_MAX_STACKS || word_off > UINT32_MAX) return;
    uint32_t *index = (uint32_t *)(ls_live.base + LR_LIVE_STACKIDX_OFF);
    __atomic_store_n(&index[id], (uint32_t)word_off, __ATOMIC_RELEASE); /* the node's fields before its offset */
}

static int try_insert(uint32_t k, uint64_t hash, uint64_t addr, uint64_t size, uint32_t stack_id, uint8_t fn, uint64_t time_ns) {
    lr_live_slot *seg = segment(k);
    uint64_t mask = lr_live_segment_slots(k) - 1;
    for (uint64_t i = 0, j = hash & mask; i < LR_LIVE_PROBE; i++, j = (j + 1) & mask) {
        lr_live_slot *s = &seg[j];
        uint64_t a = __atomic_load_n(&s->addr, __ATOMIC_RELAXED);
        if (a != LR_LIVE_EMPTY && a != LR_LIVE_TOMB) continue;
        /* seq_cst: a collector that bumps the generation after this either sees the slot or our ring record */
        if (!__atomic_compare_exchange_n(&s->addr, &a, LR_LIVE_BUSY, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) continue;
        uint16_t q = s->seq;
        __atomic_store_n(&s->seq, (uint16_t)(q + 1), __ATOMIC_RELAXED); /* odd: a reader's copy will not hold */
        __atomic_thread_fence(__ATOMIC_RELEASE);                       /* the odd seq before the fields */
        s->size = size;
        s->time_ns = time_ns;
        s->stack_id = stack_id;
        s->fn = fn;
        s->reserved = 0;
        __atomic_store_n(&s->seq, (uint16_t)(q + 2), __ATOMIC_RELEASE);
        __atomic_store_n(&s->addr, addr, __ATOMIC_RELEASE); /* the key last: a reader that sees it sees the fields */
        return 1;
    }
    return 0;
}

void ls_live_prefetch(uint64_t addr) {
    lr_live_header *h = ls_live.hdr;
    if (!h || addr < LR_LIVE_FIRST_ADDR) return;
    uint32_t k = __atomic_load_n(&h->segments, __ATOMIC_RELAXED); /* a hint only: a stale count costs a miss */
    if (k == 0 || k > LR_LIVE_MAX_SEGMENTS) return;
    k--;
    lr_prefetch(&segment(k)[lr_live_hash(addr) & (lr_live_segment_slots(k) - 1)]);
}

void ls_live_insert(uint64_t addr, uint64_t size, uint32_t stack_id, uint8_t fn, uint64_t time_ns) {
    lr_live_header *h = ls_live.hdr;
    if (!h || addr < LR_LIVE_FIRST_ADDR) return;
    uint64_t hash = lr_live_hash(addr);
    for (;;) {
        uint32_t n = __atomic_load_n(&h->segments, __ATOMIC_ACQUIRE);
        if (n > LR_LIVE_MAX_SEGMENTS) n = LR_LIVE_MAX_SEGMENTS; /* only we write it, but it is shared memory */
        for (uint32_t k = n; k-- > 0;) /* newest first: the older ones fill back up as their blocks are freed */
            if (try_insert(k, hash, addr, size, stack_id, fn, time_ns)) return;
        if (n >= LR_LIVE_MAX_SEGMENTS) {
            __atomic_fetch_add(&h->table_full, 1, __ATOMIC_RELAXED);
            return;
        }
        /* Every segment is crowded around this key: the next, twice as large, takes it. A lost CAS means
         * another thread just did the same. */
        __atomic_compare_exchange_n(&h->segments, &n, n + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    }
}

void ls_live_remove(uint64_t addr, struct ls_live_undo *out) {
    lr_live_header *h = ls_live.hdr;
    if (out) out->valid = 0;
    if (!h || addr < LR_LIVE_FIRST_ADDR) return;
    uint64_t hash = lr_live_hash(addr);
    uint32_t n = __atomic_load_n(&h->segments, __ATOMIC_ACQUIRE);
    if (n > LR_LIVE_MAX_SEGMENTS) n = LR_LIVE_MAX_SEGMENTS;
    for (uint32_t k = n; k-- > 0;) {
        lr_live_slot *seg = segment(k);
        uint64_t mask = lr_live_segment_slots(k) - 1;
        for (uint64_t i = 0, j = hash & mask; i < LR_LIVE_PROBE; i++, j = (j + 1) & mask) {
            lr_live_slot *s = &seg[j];
            uint64_t a = __atomic_load_n(&s->addr, __ATOMIC_ACQUIRE);
            if (a == LR_LIVE_EMPTY) break; /* a used slot never becomes empty again: the key is not further on */
            if (a != addr) continue;
            /* Only the thread freeing addr can change this slot now: the fields are stable. */
            if (out) *out = (struct ls_live_undo){.size = s->size, .time_ns = s->time_ns, .stack_id = s->stack_id, .fn = s->fn, .valid = 1};
            /* seq_cst, as for an insert: orders the ring check that follows after the removal */
            if (__atomic_compare_exchange_n(&s->addr, &a, LR_LIVE_TOMB, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return;
            if (out) out->valid = 0; /* a double free racing ours took it */
            return;
        }
    }
}

void ls_live_restore(uint64_t addr, struct ls_live_undo *u) {
    if (!u->valid) return;
    u->valid = 0;
    ls_live_insert(addr, u->size, u->stack_id, u->fn, u->time_ns);
}

/* The module log: records in the ring's format, appended under the module lock; modlog_used commits them. */
static void log_record(const void *rec, uint32_t len) {
    lr_live_header *h = ls_live.hdr;
    if (!h) return;
    uint64_t used = h->modlog_used;
    if (used > LR_LIVE_MODLOG_SIZE || LR_LIVE_MODLOG_SIZE - used < len) {
        __atomic_fetch_add(&h->modlog_full, 1, __ATOMIC_RELAXED);
        return;
    }
    memcpy(ls_live.base + LR_LIVE_MODLOG_OFF + used, rec, len);
    lr_store_release_u64(&h->modlog_used, used + len); /* the record before the length that covers it */
}

void ls_live_log_module(uint32_t id, const char *path, uint16_t path_len, const uint8_t *build_id, uint8_t build_id_len,
                        uint64_t bias, uint64_t lo, uint64_t hi) {
    lr_live_header *h = ls_live.hdr;
    if (!h) return;
    if (path_len > LR_MAX_PATH) path_len = LR_MAX_PATH;
    if (build_id_len > LR_MAX_BUILD_ID) build_id_len = LR_MAX_BUILD_ID;
    uint32_t len = lr_round8((uint32_t)sizeof(lr_module) + path_len);
    uint64_t used = h->modlog_used;
    if (used > LR_LIVE_MODLOG_SIZE || LR_LIVE_MODLOG_SIZE - used < len) {
        __atomic_fetch_add(&h->modlog_full, 1, __ATOMIC_RELAXED);
        return;
    }
    lr_module *m = (lr_module *)(ls_live.base + LR_LIVE_MODLOG_OFF + used); /* past modlog_used: no reader looks yet */
    memset(m, 0, len);
    m->h = (lr_record){.size = len, .type = LR_T_MODULE, .fn = LR_FN_NONE, .flags = 0};
    m->module_id = id;
    m->path_len = path_len;
    m->build_id_len = build_id_len;
    m->bias = bias;
    m->lo = lo;
    m->hi = hi;
    memcpy(m->build_id, build_id, build_id_len);
    memcpy(m->path, path, path_len);
    lr_store_release_u64(&h->modlog_used, used + len);
}

void ls_live_log_unmodule(uint32_t id) {
    lr_unmodule u = {.h = {.size = sizeof(lr_unmodule), .type = LR_T_UNMODULE, .fn = LR_FN_NONE, .flags = 0}, .module_id = id};
    log_record(&u, sizeof u);
}
