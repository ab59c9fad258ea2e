/* The floor of any LD_PRELOAD allocator wrapper: malloc and free that do nothing but jump to glibc's
 * exported __libc_malloc and __libc_free. What a preloaded shim costs above this is its own work;
 * this much is the second indirect jump every call takes (tools/bench/bench.py). */
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

__attribute__((visibility("default"))) void *malloc(size_t n) { return __libc_malloc(n); }
__attribute__((visibility("default"))) void free(void *p) { __libc_free(p); }
