/* ring.c: creates the sealed memfd ring (leakring.h) and reserves space in it for the writers. */
#include <errno.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "leakring_sys.h"
#include "shim.h"

struct ls_ring ls_ring = {.fd = -1};
__thread struct ls_thread ls_tls;

/* read_pos at which a wait last ran out: while the reader stays there, full-ring writers drop at once. */
static uint64_t stuck_read_pos = UINT64_MAX;
uint64_t ls_ring_gone_beat = UINT64_MAX;

static uint64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts); /* vDSO: no system call */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
uint64_t ls_now_coarse(void) { return clock_ns(CLOCK_MONOTONIC_COARSE); }

uint32_t ls_tid_slow(void) { return ls_tls.tid = (uint32_t)syscall(SYS_gettid); }

int ls_ring_create(uint32_t gen, int expect_collector) {
    uint64_t size = ls_config.ring_size;
    size_t file_len = LR_HEADER_SIZE + size, map_len = LR_HEADER_SIZE + 2 * size;
    int fd = lr_memfd_create(LR_MEMFD_NAME, LR_MFD_CLOEXEC | LR_MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    unsigned char *base = MAP_FAILED;
    if (fchmod(fd, 0600) != 0 || ftruncate(fd, (off_t)file_len) != 0) goto fail;
    base = ls_sys_mmap(NULL, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) goto fail;
    if (ls_sys_mmap(base, file_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
        ls_sys_mmap(base + file_len, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, LR_HEADER_SIZE) ==
            MAP_FAILED)
        goto fail;

    lr_header *h = (lr_header *)base;
    h->version = LR_VERSION;
    h->header_size = LR_HEADER_SIZE;
    h->data_size = size;
    h->max_depth = ls_config.depth;
    h->pid = getpid();
    h->start_realtime_ns = clock_ns(CLOCK_REALTIME);
    h->start_monotonic_ns = clock_ns(CLOCK_MONOTONIC);
    h->flags = expect_collector ? LR_FLAG_EXPECT_COLLECTOR : 0;
    h->sample_bytes = ls_config.sample_bytes;
    h->cursor = LR_CURSOR(gen, 0);
    lr_store_release_u64(&h->magic, LR_MAGIC); /* magic last: a reader that sees it sees a complete header */
    /* Sealing last too: the collector treats an unsealed ring as "not ready yet". */
    if (lr_add_seals(fd, LR_SEALS_APPLIED) != 0) goto fail;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 500); /* out of the way of apps that dup2 over low fds */
    if (high >= 0) {
        close(fd);
        fd = high;
    }

    ls_ring.hdr = h;
    ls_ring.data = base + LR_HEADER_SIZE;
    ls_ring.size = size;
    ls_ring.map_base = base;
    ls_ring.map_len = map_len;
    ls_ring.fd = fd;
    ls_ring.flags = h->flags;
    ls_ring.start_mono = h->start_monotonic_ns;
    ls_tls.read_pos = 0;
    ls_tls.skipped = 0;
    stuck_read_pos = UINT64_MAX;
    ls_ring_gone_beat = UINT64_MAX;
    return 0;
fail:
    if (base != MAP_FAILED) ls_sys_munmap(base, map_len);
    close(fd);
    return -1;
}

void ls_ring_forget(void) {
    if (ls_ring.map_base) ls_sys_munmap(ls_ring.map_base, ls_ring.map_len);
    if (ls_ring.fd >= 0) close(ls_ring.fd);
    ls_ring = (struct ls_ring){.fd = -1};
}

static int reader_present(uint64_t now) {
    lr_header *h = ls_ring.hdr;
    if (lr_load_acquire_i32(&h->reader_pid) == 0)
        return (ls_ring.flags & LR_FLAG_EXPECT_COLLECTOR) && now - ls_ring.start_mono < LR_EXPECT_GRACE_NS;
    int64_t age = (int64_t)(now - lr_load_acquire_u64(&h->reader_heartbeat_ns)); /* signed: a beat may postdate now */
    return age <= (int64_t)LR_HEARTBEAT_NS;
}

int ls_ring_wanted_slow(void) {
    /* A launched app before its collector arrived: its records are kept for it (the app waits for it at start). */
    return (ls_ring.flags & LR_FLAG_EXPECT_COLLECTOR) && clock_ns(CLOCK_MONOTONIC) - ls_ring.start_mono < LR_EXPECT_GRACE_NS;
}

struct ls_wait {
    uint64_t start;    /* when this writer began to wait (wait_ns counts from here) */
    uint64_t moved;    /* when the reader last released space while we waited */
    uint64_t seen_rp;  /* the read_pos we saw then */
    uint32_t rounds;
};

/* Full ring: 1 to look again, 0 to drop. Bounded: spin, then yield, then sleep. The bound, max_wait_ns,
 * counts from the reader's last progress, not from the start of this writer's wait: with many threads a
 * writer can lose the race for freed space to others for long, and that is back-pressure from a live
 * collector, not a stuck one. */
static int wait_for_space(struct ls_wait *w) {
    lr_header *h = ls_ring.hdr;
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    if (!reader_present(now)) {
        /* Gone (killed, or stopped past the heartbeat): stop writing until it beats again. */
        if (lr_load_acquire_i32(&h->reader_pid) != 0)
            __atomic_store_n(&ls_ring_gone_beat, lr_load_acquire_u64(&h->reader_heartbeat_ns), __ATOMIC_RELAXED);
        return 0;
    }
    uint64_t rp = lr_load_acquire_u64(&h->read_pos);
    if (rp == __atomic_load_n(&stuck_read_pos, __ATOMIC_RELAXED)) return 0;
    if (w->rounds == 0) {
        w->start = w->moved = now;
        w->seen_rp = rp;
        __atomic_fetch_add(&h->waits, 1, __ATOMIC_RELAXED);
    } else if (rp != w->seen_rp) {
        w->moved = now;
        w->seen_rp = rp;
    }
    if (now - w->moved >= ls_config.max_wait_ns) {
        __atomic_store_n(&stuck_read_pos, rp, __ATOMIC_RELAXED);
        return 0;
    }
    /* Exchange so that one writer, not all of them, pays for the wake-up. */
    if (__atomic_load_n(&h->reader_sleeping, __ATOMIC_RELAXED) && lr_exchange_u32(&h->reader_sleeping, 0) == 1)
        lr_futex_wake(&h->reader_sleeping);
    w->rounds++;
    if (w->rounds < 64) {
        ls_cpu_relax();
    } else if (w->rounds < 128) {
        sched_yield();
    } else {
        struct timespec ts = {0, w->rounds < 256 ? 20000 : 200000};
        nanosleep(&ts, NULL);
    }
    return 1;
}

static void waited(const struct ls_wait *w) {
    if (w->rounds) __atomic_fetch_add(&ls_ring.hdr->wait_ns, clock_ns(CLOCK_MONOTONIC) - w->start, __ATOMIC_RELAXED);
}

int ls_ring_reserve_slow(uint32_t gen, uint32_t len, unsigned char **rec, uint64_t *end) {
    lr_header *h = ls_ring.hdr;
    struct ls_thread *t = &ls_tls;
    struct ls_wait w = {0, 0, 0, 0};
    int saved = errno; /* waiting makes system calls; the app's errno must survive them */
    ls_prefetch_cursor();
    uint64_t c = lr_load_acquire_u64(&h->cursor);
    for (;;) {
        if (gen != LS_ANY_GEN && LR_CURSOR_GEN(c) != gen) {
            waited(&w);
            return LS_RETRY;
        }
        uint64_t p = LR_CURSOR_POS(c);
        if (LS_UNLIKELY(((p + len - t->read_pos) & LR_POS_MASK) > ls_ring.size)) {
            t->read_pos = lr_load_acquire_u64(&h->read_pos); /* acquire: the reader zeroed what it released */
            if (((p + len - t->read_pos) & LR_POS_MASK) > ls_ring.size) {
                int again = wait_for_space(&w);
                errno = saved;
                if (!again) {
                    waited(&w);
                    return LS_DROP;
                }
                c = lr_load_acquire_u64(&h->cursor);
                continue;
            }
        }
        if (lr_cas_u64(&h->cursor, &c, LR_CURSOR(LR_CURSOR_GEN(c), p + len))) {
            *rec = ls_ring.data + (p & (ls_ring.size - 1)); /* may run into the second mapping: that is the point */
            *end = (p + len) & LR_POS_MASK;
            if (LS_UNLIKELY(w.rounds)) waited(&w);
            errno = saved;
            return LS_OK;
        }
    }
}

void ls_ring_wake(uint64_t end) {
    lr_header *h = ls_ring.hdr;
    ls_tls.read_pos = lr_load_acquire_u64(&h->read_pos); /* a stale one would wake the reader for every record */
    if (((end - ls_tls.read_pos) & LR_POS_MASK) < ls_ring.size / 4) return;
    int saved = errno;
    if (lr_exchange_u32(&h->reader_sleeping, 0) == 1) lr_futex_wake(&h->reader_sleeping);
    errno = saved;
}

void ls_ring_lost(uint64_t events, uint64_t bytes) {
    __atomic_fetch_add(&ls_ring.hdr->lost_events, events, __ATOMIC_RELAXED);
    __atomic_fetch_add(&ls_ring.hdr->lost_bytes, bytes, __ATOMIC_RELAXED);
}

void ls_ring_skip_counted(int back) {
    ls_tls.skipped = !back;
    ls_ring_lost(1, 0);
}

void ls_ring_count(uint64_t *counter) { __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }

void ls_ring_wait_reader(void) {
    /* A launched app that crashes or exits before its collector opened the ring takes every record with it. */
    if (!(ls_ring.flags & LR_FLAG_EXPECT_COLLECTOR)) return;
    int saved = errno;
    while (lr_load_acquire_i32(&ls_ring.hdr->reader_pid) == 0 &&
           clock_ns(CLOCK_MONOTONIC) - ls_ring.start_mono < LR_EXPECT_GRACE_NS) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    errno = saved;
}

int ls_ring_unmap_request(void *addr, size_t len, int *result) {
    uintptr_t lo = (uintptr_t)addr, hi = lo + len, rlo = (uintptr_t)ls_ring.map_base, rhi = rlo + ls_ring.map_len;
    if (!ls_ring.map_base || len == 0 || hi <= rlo || lo >= rhi) return 0;
    if (!__atomic_load_n(&ls_ring.hdr->ring_unmapped_ns, __ATOMIC_RELAXED))
        __atomic_store_n(&ls_ring.hdr->ring_unmapped_ns, clock_ns(CLOCK_MONOTONIC), __ATOMIC_RELEASE);
    /* The ring stays mapped: a thread already past its wrapper's entry may still write a record into it. */
    int r = 0;
    if (lo < rlo) r |= ls_sys_munmap(addr, rlo - lo);
    if (hi > rhi) r |= ls_sys_munmap((void *)rhi, hi - rhi);
    *result = r ? -1 : 0;
    return 1;
}
