/* Run under libleakshim.so (no collector): makes a known mix of allocations, then copies its own ring
 * (the memfd /proc/self/fd names "leakshim-ring") to argv[1], for the ring fuzzer's seed corpus.
 * The copy goes through a static buffer and raw read/write, so it adds no records of its own. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char ring[4096 + (1 << 20)];

__attribute__((noinline)) static void *leaf(size_t n) { return malloc(n); }
__attribute__((noinline)) static void *middle(size_t n) { return leaf(n) ; }

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int mode = getenv("RING_DUMP_MODE") ? atoi(getenv("RING_DUMP_MODE")) : 0;
    char ringpath[256] = "";
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[300], target[256];
        snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n > 0 && (target[n] = 0, strstr(target, "leakshim-ring"))) snprintf(ringpath, sizeof ringpath, "%s", p);
    }
    if (d) closedir(d);
    if (!ringpath[0]) { fputs("ring-dump: no leakshim ring (run it with LD_PRELOAD=libleakshim.so)\n", stderr); return 1; }

    void *keep[64];
    for (int i = 0; i < 16; i++) keep[i] = middle(16u << (i % 8));
    keep[16] = calloc(10, 100);
    keep[17] = realloc(leaf(40), 4000);
    void *aligned = NULL;
    if (posix_memalign(&aligned, 64, 256) == 0) keep[18] = aligned;
    keep[19] = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap((char *)keep[19] + 4096, 4096);
    void *grown = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    keep[20] = mremap(grown, 4096, 8 * 4096, MREMAP_MAYMOVE);
    for (int i = 0; i < 8; i++) free(keep[i]);
    if (mode == 1) {
        /* A dlopen/dlclose pair: MODULE and UNMODULE records. */
        void *h = dlopen("libz.so.1", RTLD_NOW);
        if (h) dlclose(h);
    }
    if (mode == 2) {
        /* Many records: fills a 64 KiB ring, so the shim drops and counts (lost_events). */
        for (int i = 0; i < 4000; i++) free(middle(24));
    }

    int in = open(ringpath, O_RDONLY);
    ssize_t n = in < 0 ? -1 : pread(in, ring, sizeof ring, 0);
    int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (n <= 0 || out < 0 || write(out, ring, (size_t)n) != n) { perror("ring-dump"); return 1; }
    close(out);
    return 0;
}
