/* unwind.c: the stack walks. The default one applies each frame's DWARF unwind rule (cfi.c) from a
 * process-wide cache keyed by return address, so a return address costs one cache probe and two loads
 * after its first sighting; anything it cannot express goes to libunwind. LEAKSHIM_UNWIND=fp follows
 * frame pointers only; LEAKSHIM_UNWIND=libunwind uses unw_backtrace for every stack.
 * Every stack read is bounds-checked against the range of the stack it is on (stackbounds.c). */
#define UNW_LOCAL_ONLY /* the _UL variants: fast local unwinding, in libunwind.so.8 itself */
#include <errno.h>
#include <libunwind.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/ucontext.h>

#include "shim.h"

#define CACHE_SETS (1u << 14) /* x 4 ways x 16 bytes: 1 MiB of address space, touched as it fills */
#define WAYS 4
#define BUSY UINT64_MAX       /* a slot a writer is filling */

struct slot {
    uint64_t key; /* 0: empty; else lookup address | exact << 47 | epoch << 48 */
    uint64_t rule; /* a struct ls_rule */
};
static struct slot (*cache)[WAYS];
static uintptr_t own_lo, own_hi; /* the shim's executable segment */

int ls_unwind_init(uintptr_t text_lo, uintptr_t text_hi) {
    own_lo = text_lo;
    own_hi = text_hi;
    void *p = ls_sys_mmap(NULL, sizeof(struct slot) * WAYS * CACHE_SETS, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return -1;
    cache = p;
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    return 0;
}

static inline int own(uintptr_t ip) { return ip - own_lo < own_hi - own_lo; }

static inline uint64_t pack(struct ls_rule r) {
    uint64_t v;
    __builtin_memcpy(&v, &r, sizeof v);
    return v;
}
static inline struct ls_rule unpack(uint64_t v) {
    struct ls_rule r;
    __builtin_memcpy(&r, &v, sizeof r);
    return r;
}
_Static_assert(sizeof(struct ls_rule) == 8, "a rule fits one atomic word");

static inline struct slot *set_of(uint64_t key) {
    return cache[(uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 40) & (CACHE_SETS - 1)];
}

/* Slow path: compute and publish. A slot is replaced seqlock-style (BUSY, rule, key), so a reader that
 * saw the key before and after reading the rule has the rule that goes with it. */
__attribute__((noinline)) static struct ls_rule miss(uint64_t key, uintptr_t pc) {
    struct ls_rule r;
    int saved = errno; /* the loader's iteration is not ours to let change it */
    ls_cfi_rule(pc, &r);
    errno = saved;
    if (own(pc)) r.flags |= LS_RULE_OWN;
    struct slot *set = set_of(key);
    uint64_t epoch = key >> 48;
    int victim = (int)((key >> 4) & (WAYS - 1));
    for (int w = 0; w < WAYS; w++) { /* prefer an empty slot or one from before the last dlclose */
        uint64_t k = __atomic_load_n(&set[w].key, __ATOMIC_RELAXED);
        if (k == 0 || (k != BUSY && k >> 48 != epoch)) {
            victim = w;
            break;
        }
    }
    struct slot *s = &set[victim];
    uint64_t old = __atomic_load_n(&s->key, __ATOMIC_RELAXED);
    if (old != BUSY && __atomic_compare_exchange_n(&s->key, &old, BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        __atomic_thread_fence(__ATOMIC_RELEASE); /* BUSY is visible before the new rule */
        __atomic_store_n(&s->rule, pack(r), __ATOMIC_RELAXED);
        __atomic_store_n(&s->key, key, __ATOMIC_RELEASE); /* the rule is visible before the key */
    } /* else another thread is filling it: this one simply stays uncached */
    return r;
}

static inline struct ls_rule shared_rule(uint64_t key, uintptr_t pc) {
    struct slot *set = set_of(key);
    for (int w = 0; w < WAYS; w++) {
        if (__atomic_load_n(&set[w].key, __ATOMIC_ACQUIRE) == key) {
            uint64_t rule = __atomic_load_n(&set[w].rule, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_ACQUIRE); /* the rule is read before the key is checked again */
            if (__atomic_load_n(&set[w].key, __ATOMIC_RELAXED) == key) return unpack(rule);
        }
    }
    return miss(key, pc);
}

/* This thread's own copy of the rules it used last, direct-mapped and dense (4 KiB), so that the walk of
 * a deep stack reads lines that stay in L1 instead of one line of the shared table per frame. Only this
 * thread touches it, and a signal handler cannot walk while the guard is held: plain loads and stores. */
#define NEAR 256
static __thread struct slot near[NEAR];

/* epoch: the dlclose count, already in place (bits 48 and up) */
static inline struct ls_rule rule_at(uintptr_t ip, int exact, uint64_t epoch) {
    uint64_t key = ip | (uint64_t)exact << 47 | epoch;
    struct slot *mine = &near[(ip ^ ip >> 9) & (NEAR - 1)];
    if (LS_LIKELY(mine->key == key)) return unpack(mine->rule);
    struct ls_rule r = shared_rule(key, exact ? ip : ip - 1); /* a return address belongs to the call before it */
    mine->key = key;
    mine->rule = pack(r);
    return r;
}

static inline int inside(const struct ls_range *r, uintptr_t addr, size_t len) {
    return addr >= r->lo && addr <= r->hi && r->hi - addr >= len;
}
static inline uintptr_t load(uintptr_t addr) { return *(const uintptr_t *)addr; }

struct frame {
    uintptr_t ip, sp, bp; /* sp and bp: the values in the function ip returns into */
};

/* The innermost frame outside the shim, found through the shim's own frame pointers (it keeps them),
 * from the wrapper's frame that enter() noted: its return address, and the sp and rbp its function sees. */
static inline __attribute__((always_inline)) int leave_shim(struct frame *f, const struct ls_range *r) {
    uintptr_t fp = ls_tls.entry_fp, here = (uintptr_t)__builtin_frame_address(0);
    if (fp < here || !inside(r, fp, 16)) fp = here; /* not above us: not this call's */
    for (int i = 0; i < 16 && inside(r, fp, 16); i++) {
        uintptr_t ret = load(fp + 8), next = load(fp);
        if (!own(ret)) {
            *f = (struct frame){ret, fp + 16, next};
            return 1;
        }
        if (next <= fp) break;
        fp = next;
    }
    return 0;
}

/* The signal frame's saved registers: the interrupted ip, sp and rbp (the ucontext sits at the sp that
 * the handler returns to, the kernel's rt_sigframe minus its return address). */
static int through_signal(struct frame *f, struct ls_range *r) {
    uintptr_t g = f->sp + offsetof(ucontext_t, uc_mcontext.gregs);
    if (!inside(r, g, sizeof(greg_t) * NGREG)) return 0;
    const greg_t *regs = (const greg_t *)g;
    f->ip = (uintptr_t)regs[REG_RIP];
    f->sp = (uintptr_t)regs[REG_RSP];
    f->bp = (uintptr_t)regs[REG_RBP];
    return inside(r, f->sp, 8) || ls_stack_range(f->sp, r); /* a handler on sigaltstack returns to another stack */
}

enum { STEP_STOP = 0, STEP_FRAME = 1, STEP_SIGNAL = 2, STEP_FALLBACK = 3 };

/* The rules other than "CFA = rsp/rbp + k": one step of f, or what to do instead. */
__attribute__((noinline)) static int rare_step(struct frame *f, struct ls_rule rule, struct ls_range *r) {
    uintptr_t cfa;
    switch (rule.kind) {
    case LS_R_BP_DEREF:
        if (!inside(r, f->bp + (intptr_t)rule.cfa_off, 8)) return STEP_STOP;
        cfa = load(f->bp + (intptr_t)rule.cfa_off);
        break;
    case LS_R_SIGNAL: return through_signal(f, r) ? STEP_SIGNAL : STEP_STOP;
    case LS_R_NOINFO: /* generated code or code without CFI: guess a frame-pointer frame, as libunwind does */
        if (f->bp < f->sp) return STEP_STOP;
        cfa = f->bp + 16;
        rule.flags |= LS_RULE_BP_SAVED;
        rule.bp_off = -16;
        break;
    case LS_R_END: return STEP_STOP;
    default: return STEP_FALLBACK; /* LS_R_FALLBACK: libunwind takes this stack */
    }
    if (cfa < f->sp + 8 || !inside(r, cfa - 8, 8)) return STEP_STOP;
    if (rule.flags & LS_RULE_BP_SAVED) {
        uintptr_t at = (rule.flags & LS_RULE_BP_AT_BP ? f->bp : cfa) + (intptr_t)rule.bp_off;
        if (!inside(r, at, 8)) return STEP_STOP;
        f->bp = load(at);
    }
    f->ip = load(cfa - 8);
    f->sp = cfa;
    return f->ip < 4096 ? STEP_STOP : STEP_FRAME;
}

__attribute__((noinline)) int ls_unwind_cfi(uint64_t *buf, int want, uint64_t *mix) {
    struct ls_range r;
    struct frame f;
    if (!ls_stack_range((uintptr_t)__builtin_frame_address(0), &r) || !leave_shim(&f, &r)) return -1;
    const uint64_t epoch = (uint64_t)(__atomic_load_n(&ls_modgen, __ATOMIC_ACQUIRE) & 0x7fff) << 48;
    uintptr_t hi = r.hi;
    uintptr_t ip = f.ip, sp = f.sp, bp = f.bp, last_ip = 0;
    int exact = 0;
    uint64_t sum = 0;
    struct ls_rule rule = {0, 0, 0, 0};
    int n = 0;
    for (;;) {
        if (ip != last_ip) rule = rule_at(ip, exact, epoch); /* recursion repeats an ip: one probe */
        last_ip = ip;
        if (LS_LIKELY(!(rule.flags & LS_RULE_OWN))) { /* a shim frame deeper down (dlclose's) is cut */
            sum += ls_frame_mix(ip, (uint64_t)n);
            buf[n++] = ip;
            if (n == want) break;
        }
        uintptr_t cfa;
        if (LS_LIKELY(rule.kind == LS_R_SP)) cfa = sp + (intptr_t)rule.cfa_off;
        else if (rule.kind == LS_R_BP) cfa = bp + (intptr_t)rule.cfa_off;
        else {
            f = (struct frame){ip, sp, bp};
            int step = rare_step(&f, rule, &r);
            if (step == STEP_STOP) break;
            if (step == STEP_FALLBACK) return -1;
            exact = step == STEP_SIGNAL; /* the interrupted ip is no return address: its own rule applies */
            last_ip = 0;
            ip = f.ip, sp = f.sp, bp = f.bp;
            hi = r.hi; /* a handler on sigaltstack returned to another stack */
            continue;
        }
        /* The return address at cfa - 8 and the saved rbp must lie in [sp, hi). */
        if (cfa < sp + 8 || cfa > hi) break;
        if (rule.flags & LS_RULE_BP_SAVED) {
            uintptr_t at = cfa + (intptr_t)rule.bp_off;
            if (at < sp || at > hi - 8) break;
            bp = load(at);
        }
        ip = load(cfa - 8);
        sp = cfa;
        exact = 0;
        if (ip < 4096) break;
    }
    *mix = sum;
    return n;
}

/* LEAKSHIM_UNWIND=fp: saved frame pointers only, upwards within the stack. A function built without
 * them hides its caller's frame, as with every frame-pointer unwinder. */
__attribute__((noinline)) int ls_unwind_fp(uint64_t *buf, int want) {
    struct ls_range r;
    struct frame f;
    if (!ls_stack_range((uintptr_t)__builtin_frame_address(0), &r) || !leave_shim(&f, &r)) return -1;
    int n = 0;
    buf[n++] = f.ip;
    uintptr_t fp = f.bp, low = f.sp;
    while (n < want && fp >= low && inside(&r, fp, 16) && !(fp & 7)) {
        uintptr_t ret = load(fp + 8);
        if (ret < 4096) break;
        if (!own(ret)) buf[n++] = ret;
        low = fp + 16;
        fp = load(fp);
    }
    return n;
}

/* After a dlclose: libunwind's caches are keyed by address as well, and another object may come to use it. */
void ls_unwind_flush(void) { unw_flush_cache(unw_local_addr_space, 0, 0); }

/* libunwind, the shim's own frames left out wherever they are. */
__attribute__((noinline)) int ls_unwind_libunwind(uint64_t *buf, int want) {
    int saved = errno; /* libunwind may make system calls (mincore) to validate addresses */
    int got = unw_backtrace((void **)buf, want);
    errno = saved;
    int n = 0;
    for (int i = 0; i < got; i++)
        if (!own(buf[i])) buf[n++] = buf[i];
    return n;
}
