/* A small shared library with DWARF, inlined calls and a C++-style mangled name, as the ELF fuzzer's
 * seed (tools/fuzz/seeds/make-corpus.sh builds it several ways). */
#include <stdlib.h>

static inline __attribute__((always_inline)) void *inner(size_t n) { return malloc(n * 2); }
static inline __attribute__((always_inline)) void *outer(size_t n) { return inner(n + 1); }

__attribute__((noinline)) void *seed_alloc(size_t n) { return outer(n); }
__attribute__((noinline)) void *_ZN4seed5cache4growEm(size_t n) { return seed_alloc(n) ? malloc(n) : 0; }
int seed_counter;
