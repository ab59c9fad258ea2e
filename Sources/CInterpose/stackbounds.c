/* stackbounds.c: the range of the stack each thread runs on, so that a walk reads nothing unmapped.
 * Nothing here may allocate or take a libc lock when called from a wrapper: the allocator may have been
 * called with one held (pthread_getattr_np calls realloc holding the thread's own lock). So a thread
 * started through pthread_create learns its bounds in its first instruction, before any user code, with
 * pthread_getattr_np; any other thread (the main one, threads started before the shim or by libc itself)
 * finds the mapping its stack pointer lies in from /proc/self/maps, read with raw system calls. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define MAX_MAPS_READS 16 /* per thread: a program that switches among many foreign stacks gets libunwind */

/* The mapping holding `addr`, from /proc/self/maps, parsed as it streams in through a small buffer.
 * 1 if found; *is_stack tells the main thread's "[stack]". */
static int mapping_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi, int *is_stack) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[512], tail[8] = {0}; /* tail: the line's last 7 characters */
    uintptr_t a = 0, b = 0;
    int field = 0, found = 0;
    long got;
    while (!found && (got = syscall(SYS_read, fd, buf, sizeof buf)) > 0) {
        for (long i = 0; i < got && !found; i++) {
            char c = buf[i];
            if (c == '\n') {
                if (field >= 2 && addr >= a && addr < b) {
                    *lo = a;
                    *hi = b;
                    *is_stack = __builtin_memcmp(tail, "[stack]", 7) == 0;
                    found = 1;
                }
                a = b = 0;
                field = 0;
                __builtin_memset(tail, 0, sizeof tail);
                continue;
            }
            if (field < 2) {
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (d >= 0) {
                    if (field == 0) a = a << 4 | (uintptr_t)d;
                    else b = b << 4 | (uintptr_t)d;
                } else {
                    field++; /* '-' ends the start, ' ' the end */
                }
            }
            __builtin_memmove(tail, tail + 1, 6);
            tail[6] = c;
        }
    }
    syscall(SYS_close, fd);
    return found;
}

static int range_slow(uintptr_t sp, struct ls_range *r);

int ls_stack_range_slow(uintptr_t sp, struct ls_range *r) {
    int saved = errno; /* system calls below */
    int found = range_slow(sp, r);
    errno = saved;
    return found;
}

static int range_slow(uintptr_t sp, struct ls_range *r) {
    struct ls_thread *t = &ls_tls;
    /* A signal handler on sigaltstack: exact bounds from the kernel, good while we run on them. */
    stack_t ss;
    if (syscall(SYS_sigaltstack, NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) &&
        sp - (uintptr_t)ss.ss_sp < ss.ss_size) {
        r->lo = (uintptr_t)ss.ss_sp;
        r->hi = (uintptr_t)ss.ss_sp + ss.ss_size;
        return 1;
    }
    if (t->maps_reads >= MAX_MAPS_READS) return 0;
    t->maps_reads++;
    uintptr_t lo, hi, tp = (uintptr_t)__builtin_thread_pointer();
    int is_stack;
    if (!mapping_of(sp, &lo, &hi, &is_stack)) return 0;
    /* Only a mapping that lives as long as the thread may be remembered: the main stack, or a pthread
     * stack, which glibc allocates together with the thread's control block (the thread pointer). */
    if (!is_stack && tp - lo >= hi - lo) return 0;
    t->stack_lo = r->lo = lo;
    t->stack_hi = r->hi = hi;
    return 1;
}

/* ---- pthread_create: start every thread through a trampoline that takes its stack's bounds. */

struct start {
    void *(*fn)(void *);
    void *arg;
};

static int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static void *thread_start(void *p) {
    struct start s = *(struct start *)p;
    ls_real.free(p);
    struct ls_thread *t = &ls_tls;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    t->guard = LS_GUARD_QUIET; /* its realloc is ours to ignore, not a reentrant call */
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            t->stack_lo = (uintptr_t)addr;
            t->stack_hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
    t->guard = 0;
    __attribute__((musttail)) return s.fn(s.arg); /* no trampoline frame stays on the thread's stack */
}

LS_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        __atomic_load_n(&real_create, __ATOMIC_ACQUIRE);
    if (!real) {
        real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT, "pthread_create");
        if (!real) return ENOSYS; /* no libc pthread_create to pass on to: nothing could have linked this call */
        __atomic_store_n(&real_create, real, __ATOMIC_RELEASE);
    }
    struct start *s = ls_resolve() ? ls_real.malloc(sizeof *s) : NULL; /* the real allocator: not tracked */
    if (!s) return real(thread, attr, fn, arg);
    s->fn = fn;
    s->arg = arg;
    int r = real(thread, attr, thread_start, s);
    if (r != 0) ls_real.free(s);
    return r;
}
