/* The malloc-heavy workload of ARCHITECTURE.md's numbers: per thread, N malloc+free pairs of
 * 16..1040 bytes at call depths 4..16, with a small window of live blocks so frees are not LIFO.
 * Usage: mallocbench [threads] [pairs-per-thread]. Prints the time its own work took, so tool start-up
 * and post-processing are not counted: "elapsed_ns=N" on stderr. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW 64

static long pairs = 2000000;

static uint64_t next(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s; }

/* Distinct call sites at distinct depths, as real programs have; noinline keeps the frames. */
__attribute__((noinline)) static void *leaf(uint64_t *s) {
    char *p = malloc(16 + next(s) % 1025);
    memset(p, 0x5a, 16); /* a program touches what it allocates */
    return p;
}
__attribute__((noinline)) static void *down(int depth, uint64_t *s) {
    if (depth <= 0) return leaf(s);
    void *p = down(depth - 1, s);
    __asm__ volatile("" ::: "memory"); /* no tail call: keep a real frame per level */
    return p;
}

static void *worker(void *arg) {
    uint64_t s = 0x9E3779B97F4A7C15ull ^ (uintptr_t)arg;
    void *window[WINDOW] = {0};
    for (long i = 0; i < pairs; i++) {
        unsigned slot = next(&s) % WINDOW;
        free(window[slot]);
        window[slot] = down(4 + (int)(next(&s) % 13), &s);
    }
    for (int i = 0; i < WINDOW; i++) free(window[i]);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2) pairs = atol(argv[2]);
    pthread_t t[64];
    if (threads < 1 || threads > 64) return 2;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (intptr_t i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    fprintf(stderr, "elapsed_ns=%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
    return 0;
}
