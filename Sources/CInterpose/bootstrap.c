/* bootstrap.c: finds the real allocator with dlsym(RTLD_NEXT) on first use, and serves the allocations
 * dlsym itself makes meanwhile from a static arena that is never reused or freed. */
#include <dlfcn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

struct ls_real ls_real;

unsigned char ls_arena[LS_ARENA_SIZE] __attribute__((aligned(64)));
static size_t arena_used;
static int resolve_state; /* 0 not started, 1 a thread is resolving, 2 done */

/* Every block carries its size 16 bytes before it, so realloc can copy one out. */
void *ls_arena_alloc(size_t size, size_t align) {
    if (align < 16) align = 16;
    if (align > 4096 || size > LS_ARENA_SIZE) return NULL;
    size_t cur = __atomic_load_n(&arena_used, __ATOMIC_RELAXED);
    for (;;) {
        size_t start = (cur + 16 + align - 1) & ~(align - 1);
        size_t end = start + ((size + 15) & ~(size_t)15);
        if (end > LS_ARENA_SIZE) return NULL;
        if (__atomic_compare_exchange_n(&arena_used, &cur, end, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *(size_t *)(ls_arena + start - 16) = size;
            ls_filter_pin(ls_arena + start); /* its free must reach the arena check, not the real free */
            return ls_arena + start; /* static storage is zeroed and never reused: calloc needs no memset */
        }
    }
}

size_t ls_arena_block_size(const void *p) { return *(const size_t *)((const unsigned char *)p - 16); }

void *ls_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return r < 0 && r > -4096 ? MAP_FAILED : (void *)r; /* syscall() already turned -errno into -1/errno */
}
int ls_sys_munmap(void *addr, size_t len) { return (int)syscall(SYS_munmap, addr, len); }

static void *next(const char *name) { return dlsym(RTLD_NEXT, name); }

int ls_resolve(void) {
    int st = __atomic_load_n(&resolve_state, __ATOMIC_ACQUIRE);
    if (LS_LIKELY(st == 2)) return 1;
    st = 0;
    /* Never wait here: the resolving thread may hold the loader lock another caller needs. Losers use the arena. */
    if (!__atomic_compare_exchange_n(&resolve_state, &st, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) return 0;
    struct ls_real r;
    r.malloc = next("malloc");
    r.calloc = next("calloc");
    r.realloc = next("realloc");
    r.reallocarray = next("reallocarray");
    r.free = next("free");
    r.posix_memalign = next("posix_memalign");
    r.aligned_alloc = next("aligned_alloc");
    r.memalign = next("memalign");
    r.valloc = next("valloc");
    r.pvalloc = next("pvalloc");
    r.mmap = next("mmap");
    r.mmap64 = next("mmap64");
    r.munmap = next("munmap");
    r.mremap = next("mremap");
    r.dlclose = next("dlclose");
    if (!r.mmap64) r.mmap64 = r.mmap;
    if (!r.malloc || !r.calloc || !r.realloc || !r.free || !r.posix_memalign || !r.memalign || !r.mmap || !r.munmap ||
        !r.mremap || !r.dlclose) {
        /* Without a real allocator there is nothing to pass through to; stay on the arena. */
        __atomic_store_n(&resolve_state, 0, __ATOMIC_RELEASE);
        return 0;
    }
    ls_real = r;
    __atomic_store_n(&resolve_state, 2, __ATOMIC_RELEASE); /* publishes ls_real to every acquire load above */
    return 1;
}
