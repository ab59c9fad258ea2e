/* config.c: the LEAKSHIM_* environment variables, parsed without allocating (we may be inside malloc). */
#include <stdlib.h>
#include <string.h>

#include "leakhandshake.h"
#include "shim.h"

struct ls_config ls_config;

/* Digits with an optional k/m/g suffix (powers of 1024); fallback when absent or malformed. */
static uint64_t env_number(const char *name, uint64_t fallback) {
    const char *s = getenv(name);
    if (!s || *s < '0' || *s > '9') return fallback;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10) return fallback;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    int shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    }
    if (*s != '\0' || v > (UINT64_MAX >> shift)) return fallback;
    return v << shift;
}

void ls_config_load(void) {
    const char *d = getenv("LEAKSHIM_DISABLE");
    ls_config.disable = d && *d && strcmp(d, "0") != 0;

    uint64_t ring = env_number("LEAKSHIM_RING_SIZE", LR_DEFAULT_DATA_SIZE);
    if (ring < LR_MIN_DATA_SIZE) ring = LR_MIN_DATA_SIZE;
    if (ring > LR_MAX_DATA_SIZE) ring = LR_MAX_DATA_SIZE;
    uint64_t pow2 = LR_MIN_DATA_SIZE;
    while (pow2 < ring) pow2 <<= 1;
    ls_config.ring_size = pow2;

    uint64_t depth = env_number("LEAKSHIM_DEPTH", LR_DEFAULT_DEPTH);
    if (depth == 0) depth = 1;
    ls_config.depth = depth > LR_MAX_DEPTH ? LR_MAX_DEPTH : (uint32_t)depth;

    uint64_t wait_ms = env_number("LEAKSHIM_MAX_WAIT_MS", 1000); /* 0 is a real setting: never wait */
    if (wait_ms > 3600000) wait_ms = 3600000; /* an hour; keeps the ns product far from overflow */
    ls_config.max_wait_ns = wait_ms * 1000000ull;

    ls_config.collector_pid = (pid_t)env_number("LEAKSHIM_COLLECTOR_PID", 0);
    ls_config.sample_bytes = env_number("LEAKSHIM_SAMPLE_BYTES", 0);
    if (ls_config.sample_bytes > (1ull << 40)) ls_config.sample_bytes = 1ull << 40; /* a TiB: already "record only huge blocks" */
    const char *f = getenv(LR_HS_FOLLOW_ENV);
    ls_config.follow_children = f && strcmp(f, "1") == 0;

    const char *u = getenv("LEAKSHIM_UNWIND");
    ls_config.unwind = !u ? LS_UNWIND_CFI
                       : strcmp(u, "fp") == 0 ? LS_UNWIND_FP
                       : strcmp(u, "libunwind") == 0 ? LS_UNWIND_LIBUNWIND
                       : strcmp(u, "compare") == 0 ? LS_UNWIND_COMPARE
                       : LS_UNWIND_CFI;
}
