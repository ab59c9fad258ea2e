/* The collector-at-scale workload: keeps N blocks of 16 bytes live (default 10,000,000), allocated from
 * 131,072 distinct call stacks of about 38 frames: 17 levels that each call the next level from one of two
 * call sites (2^17 paths), then 21 frames of plain recursion, then the allocating leaf.
 * Usage: scalebench [blocks]. Prints "elapsed_ns=N" on stderr: its own work, without tool start-up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LEVELS 17
#define PADDING 21

#define MAX_BLOCKS 16000000
/* Static, so the only heap blocks are the workload's own 16-byte ones. */
static void *keep[MAX_BLOCKS];
static long kept, total;
static volatile unsigned sink;

__attribute__((noinline)) static void leaf(long n) {
    for (long i = 0; i < n; i++) keep[kept++] = malloc(16);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void pad(int depth, long n) {
    if (depth == 0) leaf(n);
    else pad(depth - 1, n);
    __asm__ volatile("" ::: "memory"); /* no tail call: a real frame per level */
}

__attribute__((noinline)) static void level(int depth, unsigned path, long n) {
    if (depth == LEVELS) pad(PADDING, n);
    else if (path & (1u << depth)) {
        level(depth + 1, path, n); /* two call sites, kept apart by different work after them: two return addresses */
        sink += 1;
    } else {
        level(depth + 1, path, n);
        sink += 2;
    }
}

int main(int argc, char **argv) {
    total = argc > 1 ? atol(argv[1]) : 10000000;
    if (total < 0 || total > MAX_BLOCKS) return 2;
    unsigned paths = 1u << LEVELS;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned p = 0; p < paths; p++) {
        long n = total / paths + (p < (unsigned)(total % paths) ? 1 : 0);
        level(0, p, n);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    uintptr_t mix = 0; /* read every block back, so no compiler may drop the allocations */
    for (long i = 0; i < kept; i++) mix ^= (uintptr_t)keep[i];
    sink = (unsigned)mix;
    fprintf(stderr, "elapsed_ns=%lld kept=%ld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), kept);
    return 0;
}
