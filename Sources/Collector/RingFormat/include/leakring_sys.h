/*
 * leakring_sys.h: the system calls of the ring protocol (sealing, futex wake-up) as plain functions.
 * Swift cannot call variadic C (fcntl with seals, syscall) or see these macros without _GNU_SOURCE,
 * so both sides use these; the values are the kernel ABI, fixed forever.
 */
#ifndef LEAKRING_SYS_H
#define LEAKRING_SYS_H

#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

#define LR_MFD_CLOEXEC 0x0001u
#define LR_MFD_ALLOW_SEALING 0x0002u

/* The collector refuses a ring without these: a file the app could shrink would SIGBUS the reader. */
enum {
    LR_SEALS_REQUIRED = F_SEAL_SHRINK | F_SEAL_GROW,
    LR_SEALS_APPLIED = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, /* what the shim sets */
};

static inline int lr_memfd_create(const char *name, unsigned flags) {
    return (int)syscall(SYS_memfd_create, name, flags);
}
static inline int lr_get_seals(int fd) { return fcntl(fd, F_GET_SEALS); }
static inline int lr_add_seals(int fd, int seals) { return fcntl(fd, F_ADD_SEALS, seals); }

/* Shared (not private) futex: the word lives in memory two processes map. Returns -1/errno like syscall. */
static inline long lr_futex_wait(uint32_t *word, uint32_t expected, uint64_t timeout_ns) {
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    return syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, (void *)0, 0);
}
static inline long lr_futex_wake(uint32_t *word) { return syscall(SYS_futex, word, FUTEX_WAKE, 1, (void *)0, (void *)0, 0); }

/* A cache hint Swift has no spelling for: the collector fetches the live-table slot of a record a few
 * records ahead, the shim its live table's slot while it walks the stack. */
static inline void lr_prefetch(const void *p) { __builtin_prefetch(p, 1); }
static inline uint32_t lr_exchange_u32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t lr_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
