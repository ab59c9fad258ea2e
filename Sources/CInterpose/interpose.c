/* interpose.c: the exported allocator entry points, lazy initialization, fork and exit handling.
 * Ordering (leakring.h): a FREE/MUNMAP is committed before the real call, an ALLOC/MMAP reserved after it. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "leakhandshake.h"
#include "shim.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

enum { ST_UNINIT, ST_INIT, ST_ACTIVE, ST_OFF };
static int state;
static uintptr_t page_mask;
static void fork_prepare(void), fork_parent(void), fork_child(void);

#ifdef LS_ASAN_BUILD
/* tools/sanitize.sh's ASan shim: this file and bootstrap.c stay uninstrumented, the rest is instrumented,
 * and the ASan runtime is loaded after the shim. The runtime's start-up (run from whichever library's
 * initializer first reaches one of its interceptors) calls malloc, ours, before and while it maps its
 * shadow memory, so the instrumented parts may run only once the shadow exists. mincore fails with ENOMEM
 * on an unmapped range; the check is on the start-up path only, until it first succeeds. */
static int asan_ready;
static int asan_too_early(void) {
    if (__atomic_load_n(&asan_ready, __ATOMIC_ACQUIRE)) return 0;
    unsigned char v;
    uintptr_t shadow = (((uintptr_t)&asan_ready) >> 3) + 0x7fff8000; /* x86-64's shadow offset */
    if (syscall(SYS_mincore, (void *)(shadow & ~(uintptr_t)4095), 4096, &v) != 0) return 1; /* ASan intercepts mincore() */
    __atomic_store_n(&asan_ready, 1, __ATOMIC_RELEASE);
    return 0;
}
#define LS_TOO_EARLY() asan_too_early()
#else
#define LS_TOO_EARLY() 0
#endif

/* Runs with the guard held. Any failure leaves the shim a pass-through and the app untouched. */
static void init(void) {
    int s = ST_UNINIT;
    if (!__atomic_compare_exchange_n(&state, &s, ST_INIT, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    /* The loader's own early allocations (too soon for getenv), or the ASan runtime's before its shadow
     * exists: try again on a later call. */
    if (!environ || LS_TOO_EARLY()) {
        __atomic_store_n(&state, ST_UNINIT, __ATOMIC_RELEASE);
        return;
    }
    int saved = errno;
    ls_config_load();
    page_mask = (uintptr_t)getauxval(AT_PAGESZ) - 1;
    /* Connected first: only a ring a collector will claim is marked as expecting one (leakhandshake.h). */
    if (!ls_config.disable && ls_sampling_init() != 0) ls_config.sample_bytes = 0; /* the ring header says so */
    int hs = ls_config.disable ? -1 : ls_handshake_connect(LR_HS_IMAGE);
    /* The ring first: it is the big mapping, the one most likely to be refused. */
    int ok = !ls_config.disable && ls_ring_create(0, hs >= 0) == 0;
    if (ok) ls_live_init(); /* without it the shim still works; only a late attach sees less */
    if (ok && (ls_stacks_init() != 0 || ls_modules_init() != 0)) {
        ls_ring_forget(); /* no ring rather than one that never fills */
        ok = 0;
    }
    if (ok) pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (ok && ls_config.sample_bytes) __atomic_store_n(&ls_sample_interval, ls_config.sample_bytes, __ATOMIC_RELEASE);
    if (ok && !ls_config.sample_bytes) ls_filter_track_all(); /* published with the state below */
    if (hs >= 0) {
        if (ok) ls_handshake_send(hs, LR_HS_IMAGE); else close(hs);
    }
    if (ok) ls_ring_wait_reader(); /* handed over: let the collector read our maps before anything can be lost */
    errno = saved;
    __atomic_store_n(&state, ok ? ST_ACTIVE : ST_OFF, __ATOMIC_RELEASE); /* publishes everything init wrote */
}

/* 1: track this call (the guard is now held); 0: pass it through; -1: no real function known yet.
 * fp: the frame of the body that called, where the walk starts (not ours: this frame is gone by then). */
static __attribute__((noinline)) int enter_slow(uintptr_t fp) {
    struct ls_thread *t = &ls_tls;
    if (t->guard) {
        if (!(t->guard & LS_GUARD_QUIET) && __atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_ACTIVE)
            ls_ring_count(&ls_ring.hdr->reentrant_calls);
        return ls_resolve() ? 0 : -1;
    }
    if (!ls_resolve()) return -1;
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_UNINIT) {
        t->guard = LS_GUARD_ON;
        init();
        t->guard = 0;
    }
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != ST_ACTIVE) return 0;
    t->guard = LS_GUARD_ON;
    t->entry_fp = fp;
    return 1;
}

static inline int enter(void) {
    if (LS_LIKELY(__atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_ACTIVE && !ls_tls.guard)) {
        ls_tls.guard = LS_GUARD_ON; /* plain store: only this thread (or a signal handler on it) reads its guard */
        ls_tls.entry_fp = (uintptr_t)__builtin_frame_address(0); /* inlined: the wrapper's own frame */
        return 1;
    }
    return enter_slow((uintptr_t)__builtin_frame_address(0));
}
static inline void leave(void) { ls_tls.guard = 0; }

/* ALLOC or MMAP, preceded in the same reservation by its STACK when this generation has not seen it. */
/* Neither emit function saves errno: their fast paths make no call that can set it, and every slow path
 * that does (system calls, the loader) keeps the app's errno itself. */
static void emit_block(int is_mmap, uint8_t fn, const void *addr, uint64_t size, const void *old, int prot,
                       int map_flags, uint16_t flags) {
    if (!is_mmap) ls_live_prefetch((uintptr_t)addr);
    lr_stack_node *s = ls_stack_capture();
    uint64_t now = ls_now_coarse();
    uint32_t tid = ls_tid(), len = is_mmap ? sizeof(lr_mmap) : sizeof(lr_alloc);
    if (!is_mmap) ls_live_insert((uintptr_t)addr, size, s ? s->id : LR_NO_STACK, fn, now); /* before the record */
    if (!ls_ring_wanted()) return;
    for (;;) {
        uint32_t gen = ls_ring_gen();
        int send = s && __atomic_load_n(&s->sent_gen, __ATOMIC_ACQUIRE) != gen + 1;
        if (send) {
            int r = ls_modules_send(gen);
            if (r == LS_RETRY) continue;
            if (r == LS_DROP) {
                ls_ring_lost(1, size);
                break;
            }
        }
        uint32_t slen = send ? ls_stack_record_size(s) : 0;
        unsigned char *rec;
        uint64_t end;
        int r = ls_ring_reserve(gen, slen + len, &rec, &end);
        if (r == LS_RETRY) continue;
        if (r == LS_DROP) {
            ls_ring_lost(1, size);
            break;
        }
        if (send) {
            /* After our CAS: whoever sees this reserves after our STACK record. */
            __atomic_store_n(&s->sent_gen, gen + 1, __ATOMIC_RELEASE);
            ls_stack_write(rec, s);
            ls_commit(rec, slen);
            rec += slen;
        }
        ls_rec_header(rec, is_mmap ? LR_T_MMAP : LR_T_ALLOC, fn, flags);
        if (is_mmap) {
            lr_mmap *m = (lr_mmap *)rec;
            m->stack_id = s ? s->id : LR_NO_STACK;
            m->tid = tid;
            m->addr = (uintptr_t)addr;
            m->len = size;
            m->old_addr = (uintptr_t)old;
            m->time_ns = now;
            m->prot = prot;
            m->map_flags = map_flags;
        } else {
            lr_alloc *a = (lr_alloc *)rec;
            a->stack_id = s ? s->id : LR_NO_STACK;
            a->tid = tid;
            a->addr = (uintptr_t)addr;
            a->size = size;
            a->old_addr = (uintptr_t)old;
            a->time_ns = now;
        }
        ls_commit(rec, len);
        ls_after_commit(end);
        break;
    }
}

/* FREE, MUNMAP or UNDO: no stack, any generation. */
static void emit_release(uint8_t type, uint8_t fn, uint16_t flags, const void *addr, uint64_t len) {
    uint32_t size = type == LR_T_MUNMAP ? sizeof(lr_munmap) : sizeof(lr_free);
    /* The table changes before the record is reserved (leakring.h); a realloc keeps what it took out. */
    if (type == LR_T_FREE)
        ls_live_remove((uintptr_t)addr, (flags & LR_F_PENDING) ? &ls_tls.live_undo : NULL);
    else if (type == LR_T_UNDO && fn != LR_FN_MREMAP)
        ls_live_restore((uintptr_t)addr, &ls_tls.live_undo);
    if (!ls_ring_wanted()) return;
    unsigned char *rec;
    uint64_t end;
    if (ls_ring_reserve(LS_ANY_GEN, size, &rec, &end) == LS_OK) {
        ls_rec_header(rec, type, fn, flags);
        ((lr_free *)rec)->addr = (uintptr_t)addr; /* addr sits at offset 8 in lr_free, lr_munmap and lr_undo */
        if (type == LR_T_MUNMAP) ((lr_munmap *)rec)->len = len;
        ls_commit(rec, size);
        ls_after_commit(end);
    } else {
        ls_ring_lost(1, 0);
    }
}

/* A heap block that is recorded; with sampling, also noted in the set its free is looked up in. */
static inline void record_block(uint8_t fn, const void *p, uint64_t size) {
    emit_block(0, fn, p, size, NULL, 0, 0, 0);
    if (ls_sampling()) ls_sampled_add(p);
}

/* Every allocator is a wrapper and a tracked body. The wrapper is the sampled-out path and nothing else:
 * sampling's decision depends on the size alone, so most allocations are decided against there and cost
 * a compare, a subtraction on the thread's countdown and a jump to the real function: no guard, no other
 * TLS, no state load, no frame. Whatever it does not skip (no sampling, a sample point, a block of at
 * least the interval, the shim not yet started) jumps to the body, which decides again with the same
 * outcome (the skip changed nothing) and is the frame the app called, where the walk starts. A
 * sampled-out block is passed straight through whether tracking is on or this thread is inside the shim
 * (only its bytes move this thread's countdown). */
#define WRAP(ret, name, params, args, size, real)                         \
    static __attribute__((noinline)) ret name##_tracked params;           \
    LS_EXPORT ret name params {                                           \
        if (LS_LIKELY(ls_sample_skip(size))) return real;                 \
        LS_MUSTTAIL return name##_tracked args;                           \
    }                                                                     \
    static __attribute__((noinline)) ret name##_tracked params

/* The body of every "returns a pointer or NULL" allocator. */
#define TRACK_POINTER(fn, size, call, bootstrap)                     \
    do {                                                             \
        int e_ = enter();                                            \
        if (LS_UNLIKELY(e_ <= 0)) return e_ == 0 ? (call) : (bootstrap); \
        void *p_ = (call);                                           \
        if (LS_LIKELY(p_ != NULL) && ls_sample(size)) record_block(fn, p_, size); \
        leave();                                                     \
        return p_;                                                   \
    } while (0)

WRAP(void *, malloc, (size_t n), (n), n, ls_real.malloc(n)) {
    TRACK_POINTER(LR_FN_MALLOC, n, ls_real.malloc(n), ls_arena_alloc(n, 16));
}

/* nmemb * size, or SIZE_MAX when it overflows: the real calloc fails it, and no sample is taken. */
static inline size_t calloc_size(size_t nmemb, size_t size) {
    size_t n;
    return __builtin_mul_overflow(nmemb, size, &n) ? SIZE_MAX : n;
}

WRAP(void *, calloc, (size_t nmemb, size_t size), (nmemb, size), calloc_size(nmemb, size), ls_real.calloc(nmemb, size)) {
    size_t n = calloc_size(nmemb, size);
    TRACK_POINTER(LR_FN_CALLOC, n, ls_real.calloc(nmemb, size), ls_arena_alloc(n, 16));
}

static void *real_aligned_alloc(size_t align, size_t n) {
    return ls_real.aligned_alloc ? ls_real.aligned_alloc(align, n) : ls_real.memalign(align, n);
}
WRAP(void *, aligned_alloc, (size_t align, size_t n), (align, n), n, real_aligned_alloc(align, n)) {
    TRACK_POINTER(LR_FN_ALIGNED_ALLOC, n, real_aligned_alloc(align, n), ls_arena_alloc(n, align));
}

WRAP(void *, memalign, (size_t align, size_t n), (align, n), n, ls_real.memalign(align, n)) {
    TRACK_POINTER(LR_FN_MEMALIGN, n, ls_real.memalign(align, n), ls_arena_alloc(n, align));
}

static void *real_valloc(size_t n) { return ls_real.valloc ? ls_real.valloc(n) : ls_real.memalign(page_mask + 1, n); }
WRAP(void *, valloc, (size_t n), (n), n, real_valloc(n)) {
    TRACK_POINTER(LR_FN_VALLOC, n, real_valloc(n), ls_arena_alloc(n, 4096));
}

static void *real_pvalloc(size_t n) {
    return ls_real.pvalloc ? ls_real.pvalloc(n) : ls_real.memalign(page_mask + 1, (n + page_mask) & ~page_mask);
}
WRAP(void *, pvalloc, (size_t n), (n), n, real_pvalloc(n)) {
    TRACK_POINTER(LR_FN_PVALLOC, n, real_pvalloc(n), ls_arena_alloc(n, 4096));
}

WRAP(int, posix_memalign, (void **out, size_t align, size_t n), (out, align, n), n, ls_real.posix_memalign(out, align, n)) {
    int e = enter();
    if (LS_UNLIKELY(e <= 0)) {
        if (e == 0) return ls_real.posix_memalign(out, align, n);
        void *p = ls_arena_alloc(n, align);
        if (!p) return ENOMEM;
        *out = p;
        return 0;
    }
    int r = ls_real.posix_memalign(out, align, n);
    if (r == 0 && *out && ls_sample(n)) record_block(LR_FN_POSIX_MEMALIGN, *out, n);
    leave();
    return r;
}

/* free: the wrapper reads one filter byte (shim.h) and, for a block never recorded, jumps to the real
 * free; everything else (sampled blocks, full tracking, NULL, arena blocks) takes the tracked body. */
static __attribute__((noinline)) void free_tracked(void *p) {
    if (LS_UNLIKELY(ls_in_arena(p))) return; /* bootstrap blocks are never reused */
    int e = enter();
    if (LS_UNLIKELY(e <= 0)) {
        if (e == 0) ls_real.free(p);
        return;
    }
    if (p && (!ls_sampling() || ls_sampled_remove(p))) emit_release(LR_T_FREE, LR_FN_FREE, 0, p, 0);
    ls_real.free(p);
    leave();
}

LS_EXPORT void free(void *p) {
    if (LS_LIKELY(!ls_sampled_maybe(p))) return ls_real.free(p);
    LS_MUSTTAIL return free_tracked(p);
}

/* realloc of a bootstrap block: copy it out into a real one. */
static void *arena_move(void *p, size_t n) {
    void *q = ls_resolve() ? malloc(n) : ls_arena_alloc(n, 16);
    if (q && p) {
        size_t old = ls_arena_block_size(p);
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

static void *real_resize(uint8_t fn, void *p, size_t nmemb, size_t size) {
    if (fn == LR_FN_REALLOCARRAY && ls_real.reallocarray) return ls_real.reallocarray(p, nmemb, size);
    return ls_real.realloc(p, nmemb * size);
}

/* realloc(p, n): pending FREE(p), then ALLOC(q, old p) or UNDO(p). n == 0 frees p for good (glibc returns
 * NULL), so that FREE is not pending, and a minimal block some allocators return instead is an ALLOC. */
static void *resize(uint8_t fn, void *p, size_t nmemb, size_t size) {
    size_t n = nmemb * size; /* callers ruled out overflow */
    if (LS_UNLIKELY(p && ls_in_arena(p))) return arena_move(p, n);
    int e = enter();
    if (LS_UNLIKELY(e <= 0)) return e == 0 ? real_resize(fn, p, nmemb, size) : arena_move(p, n);
    /* Sampling: p's free is recorded only if p was, and q is recorded only if a sample point falls in its
       n bytes, which depends on n alone, so it is decided before the call. A free not followed by a
       recorded block is final, not pending; should that realloc then fail, p stays out of the estimate. */
    int sampling = ls_sampling() != 0;
    int old_recorded = p && (!sampling || ls_sampled_remove(p));
    int new_recorded = ls_sample(n);
    int pending = old_recorded && n && new_recorded;
    if (old_recorded) emit_release(LR_T_FREE, fn, pending ? LR_F_PENDING : 0, p, 0);
    void *q = real_resize(fn, p, nmemb, size);
    if (q) {
        if (new_recorded) {
            emit_block(0, fn, q, n, old_recorded ? p : NULL, 0, 0, 0);
            if (sampling) ls_sampled_add(q);
        }
    } else if (pending) {
        emit_release(LR_T_UNDO, fn, 0, p, 0);
        if (sampling) ls_sampled_add(p);
    }
    leave();
    return q;
}

LS_EXPORT void *realloc(void *p, size_t n) { return resize(LR_FN_REALLOC, p, 1, n); }

LS_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return resize(LR_FN_REALLOCARRAY, p, nmemb, size);
}

static void *map(int is64, void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    int e = enter();
    if (LS_UNLIKELY(e <= 0))
        return e == 0 ? (is64 ? ls_real.mmap64 : ls_real.mmap)(addr, len, prot, flags, fd, off)
                      : ls_sys_mmap(addr, len, prot, flags, fd, off);
    void *r = (is64 ? ls_real.mmap64 : ls_real.mmap)(addr, len, prot, flags, fd, off);
    if (r != MAP_FAILED) emit_block(1, LR_FN_MMAP, r, len, NULL, prot, flags, (flags & MAP_ANONYMOUS) ? 0 : LR_F_FILE);
    leave();
    return r;
}

LS_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return map(0, addr, len, prot, flags, fd, off);
}
LS_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return map(1, addr, len, prot, flags, fd, off);
}

LS_EXPORT int munmap(void *addr, size_t len) {
    int unmapped;
    if (LS_UNLIKELY(ls_ring_unmap_request(addr, len, &unmapped))) {
        __atomic_store_n(&state, ST_OFF, __ATOMIC_RELEASE); /* from now on every wrapper is a pass-through */
        return unmapped;
    }
    int e = enter();
    if (LS_UNLIKELY(e <= 0)) return e == 0 ? ls_real.munmap(addr, len) : ls_sys_munmap(addr, len);
    if (len > 0 && ((uintptr_t)addr & page_mask) == 0) emit_release(LR_T_MUNMAP, LR_FN_MUNMAP, 0, addr, len);
    int r = ls_real.munmap(addr, len);
    leave();
    return r;
}

LS_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
    void *want = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    int e = enter();
    if (LS_UNLIKELY(e <= 0))
        return e == 0 ? ls_real.mremap(old, old_len, new_len, flags, want)
                      : (void *)syscall(SYS_mremap, old, old_len, new_len, flags, want);
    /* old_len == 0 duplicates a shared mapping and DONTUNMAP keeps the old one: nothing is released. */
    int pending = old_len != 0 && !(flags & MREMAP_DONTUNMAP);
    if (pending) emit_release(LR_T_MUNMAP, LR_FN_MREMAP, LR_F_PENDING, old, old_len);
    void *r = ls_real.mremap(old, old_len, new_len, flags, want);
    if (r != MAP_FAILED)
        emit_block(1, LR_FN_MREMAP, r, new_len, pending ? old : NULL, 0, flags, 0);
    else if (pending)
        emit_release(LR_T_UNDO, LR_FN_MREMAP, 0, old, 0);
    leave();
    return r;
}

LS_EXPORT int dlclose(void *handle) {
    int (*real)(void *) = ls_resolve() ? ls_real.dlclose : (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
    int r = real(handle); /* unguarded: the library's destructors free memory we must see */
    if (enter() == 1) {
        ls_modules_after_dlclose();
        leave();
    }
    return r;
}

/* fork from a signal handler that interrupted the shim on this thread: the shim's own state is mid-change */
static __thread int fork_nested;

static void fork_prepare(void) {
    fork_nested = ls_tls.guard != 0;
    ls_tls.guard++;
    if (!fork_nested) ls_modules_lock(); /* the child must not inherit a module table half-way through a change */
}
static void fork_parent(void) {
    if (!fork_nested) ls_modules_unlock();
    ls_tls.guard--;
}
static void fork_child(void) {
    if (!fork_nested) ls_modules_unlock();
    if (fork_nested || !ls_ring.hdr) {
        /* Interrupted shim code still points into the parent's ring: leave it mapped, track nothing here. */
        __atomic_store_n(&state, ST_OFF, __ATOMIC_RELEASE);
        ls_tls.guard--;
        return;
    }
    /* The parent's ring is shared memory: the child gets its own, one generation on, so that nothing counts
       as already sent, and no collector waits on it. */
    uint32_t gen = ls_ring_gen();
    ls_ring_forget();
    ls_tls.tid = 0;
    ls_tls.read_pos = 0;
    int hs = ls_handshake_connect(LR_HS_FORK); /* -1 unless --follow-children */
    if (ls_ring_create(gen + 1, hs >= 0) != 0 || ls_live_fork_child() != 0) {
        __atomic_store_n(&state, ST_OFF, __ATOMIC_RELEASE);
        if (hs >= 0) close(hs);
    } else if (hs >= 0 && ls_handshake_send(hs, LR_HS_FORK) == 0) {
        ls_ring_wait_reader(); /* the child's first allocations wait until the collector has its maps */
    }
    ls_tls.guard--;
}

__attribute__((constructor)) static void leakshim_start(void) {
    if (enter() == 1) leave(); /* initializes even an app that never allocates */
}

__attribute__((destructor)) static void leakshim_stop(void) {
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_ACTIVE) ls_ring_wait_reader();
}
