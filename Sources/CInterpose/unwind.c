/* unwind.c: the stack walks. The default one applies each frame's DWARF unwind rule (cfi.c) from a
 * process-wide cache keyed by return address, so a return address costs one cache probe and two loads
 * after its first sighting; anything it cannot express goes to libunwind. LEAKSHIM_UNWIND=fp follows
 * frame pointers only; LEAKSHIM_UNWIND=libunwind uses unw_backtrace for every stack.
 * Every stack read is bounds-checked against the range of the stack it is on (stackbounds.c). */
#define UNW_LOCAL_ONLY /* the _UL variants: fast local unwinding, in libunwind.so.8 itself */
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
    ls_cfi_rule(pc, &r);
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

static inline struct ls_rule rule_at(uintptr_t ip, int exact, uint64_t epoch) {
    uint64_t key = ip | (uint64_t)exact << 47 | epoch << 48;
    struct slot *set = set_of(key);
    for (int w = 0; w < WAYS; w++) {
        if (__atomic_load_n(&set[w].key, __ATOMIC_ACQUIRE) == key) {
            uint64_t rule = __atomic_load_n(&set[w].rule, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_ACQUIRE); /* the rule is read before the key is checked again */
            if (__atomic_load_n(&set[w].key, __ATOMIC_RELAXED) == key) return unpack(rule);
        }
    }
    return miss(key, exact ? ip : ip - 1); /* a return address belongs to the call just before it */
}

static inline int inside(const struct ls_range *r, uintptr_t addr, size_t len) {
    return addr >= r->lo && addr <= r->hi && r->hi - addr >= len;
}
static inline uintptr_t load(uintptr_t addr) { return *(const uintptr_t *)addr; }

struct frame {
    uintptr_t ip, sp, bp; /* sp and bp: the values in the function ip returns into */
};

/* The innermost frame outside the shim, found through the shim's own frame pointers (it keeps them):
 * its return address, and the sp and rbp its function sees. */
static inline __attribute__((always_inline)) int leave_shim(struct frame *f, const struct ls_range *r) {
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
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

__attribute__((noinline)) int ls_unwind_cfi(uint64_t *buf, int want) {
    struct ls_range r;
    struct frame f;
    if (!ls_stack_range((uintptr_t)__builtin_frame_address(0), &r) || !leave_shim(&f, &r)) return -1;
    uint64_t epoch = __atomic_load_n(&ls_modgen, __ATOMIC_ACQUIRE) & 0x7fff;
    int n = 0, exact = 0;
    uintptr_t last_ip = 0;
    struct ls_rule rule = {0, 0, 0, 0};
    while (n < want) {
        if (LS_LIKELY(!own(f.ip))) buf[n++] = f.ip; /* a shim frame deeper down (dlclose's) is cut too */
        if (f.ip != last_ip || exact) rule = rule_at(f.ip, exact, epoch); /* recursion repeats an ip */
        last_ip = exact ? 0 : f.ip;
        exact = 0;
        uintptr_t cfa;
        switch (rule.kind) {
        case LS_R_SP: cfa = f.sp + (intptr_t)rule.cfa_off; break;
        case LS_R_BP: cfa = f.bp + (intptr_t)rule.cfa_off; break;
        case LS_R_BP_DEREF:
            if (!inside(&r, f.bp + (intptr_t)rule.cfa_off, 8)) return n;
            cfa = load(f.bp + (intptr_t)rule.cfa_off);
            break;
        case LS_R_SIGNAL:
            if (!through_signal(&f, &r)) return n;
            exact = 1; /* the interrupted ip is no return address: its own rule applies */
            continue;
        case LS_R_NOINFO: /* generated code or code without CFI: guess a frame-pointer frame, as libunwind does */
            if (f.bp < f.sp) return n;
            cfa = f.bp + 16;
            rule.bp_saved = 1;
            rule.bp_off = -16;
            last_ip = 0;
            break;
        case LS_R_END: return n;
        default: return -1; /* LS_R_FALLBACK: libunwind takes this stack */
        }
        if (cfa <= f.sp || !inside(&r, cfa - 8, 8)) return n;
        uintptr_t bp = f.bp;
        if (rule.bp_saved) {
            if (!inside(&r, cfa + rule.bp_off, 8)) return n;
            bp = load(cfa + rule.bp_off);
        }
        f.ip = load(cfa - 8);
        f.sp = cfa;
        f.bp = bp;
        if (f.ip < 4096) return n;
    }
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

/* libunwind, the shim's own frames left out wherever they are. */
__attribute__((noinline)) int ls_unwind_libunwind(uint64_t *buf, int want) {
    int got = unw_backtrace((void **)buf, want);
    int n = 0;
    for (int i = 0; i < got; i++)
        if (!own(buf[i])) buf[n++] = buf[i];
    return n;
}
