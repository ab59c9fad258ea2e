/* The malloc-heavy workload of ARCHITECTURE.md's numbers: per thread, N allocations of 16..1040 bytes
 * at call depths 4..16, with a small window of live blocks so frees are not LIFO, and one block in a
 * thousand leaked. Usage: mallocbench [threads] [allocations-per-thread]. Prints on stderr the time its
 * own work took ("elapsed_ns=N") and how many blocks it leaked ("leaked_blocks=N", "leaked_bytes=N"),
 * which the benchmark checks against the report. */
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
__attribute__((noinline)) static void *leaf(size_t n) {
    char *p = malloc(n);
    memset(p, 0x5a, 16); /* a program touches what it allocates */
    return p;
}
__attribute__((noinline)) static void *down(int depth, size_t n) {
    if (depth <= 0) return leaf(n);
    void *p = down(depth - 1, n);
    __asm__ volatile("" ::: "memory"); /* no tail call: keep a real frame per level */
    return p;
}

struct result {
    long id, leaked_blocks, leaked_bytes;
};

static void *worker(void *arg) {
    struct result *r = arg;
    uint64_t s = 0x9E3779B97F4A7C15ull ^ (uint64_t)r->id; /* the same sequence every run */
    void *window[WINDOW] = {0};
    size_t sizes[WINDOW] = {0};
    for (long i = 0; i < pairs; i++) {
        unsigned slot = next(&s) % WINDOW;
        if (i % 1000 == 999 && window[slot]) { /* leaked: never freed */
            r->leaked_blocks++;
            r->leaked_bytes += (long)sizes[slot];
        } else {
            free(window[slot]);
        }
        size_t n = 16 + next(&s) % 1025;
        window[slot] = down(4 + (int)(next(&s) % 13), n);
        sizes[slot] = n;
    }
    for (int i = 0; i < WINDOW; i++) free(window[i]);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2) pairs = atol(argv[2]);
    pthread_t t[64];
    struct result r[64] = {{0, 0, 0}};
    if (threads < 1 || threads > 64) return 2;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < threads; i++) {
        r[i].id = i + 1;
        pthread_create(&t[i], NULL, worker, &r[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long blocks = 0, bytes = 0;
    for (int i = 0; i < threads; i++) {
        blocks += r[i].leaked_blocks;
        bytes += r[i].leaked_bytes;
    }
    fprintf(stderr, "elapsed_ns=%lld\nleaked_blocks=%ld\nleaked_bytes=%ld\n",
            (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), blocks, bytes);
    return 0;
}
