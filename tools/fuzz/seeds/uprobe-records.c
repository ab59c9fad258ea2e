/* Writes seed files of BPF-only mode's uprobe ring-buffer records (bpf/uprobe_events.h, the one
 * definition of the layouts), in the uprobe fuzz target's framing: a little-endian u16 length, then the
 * record. The sequences are what a real run produces: malloc then free, a realloc's pending free with
 * the allocation that replaces it, a failed realloc's undo, an mmap/mremap/munmap, a stack-map
 * collision with inline frames, and a dlopen's loader event. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/types.h>
#include "seedfile.h"
#include "../../../bpf/uprobe_events.h"

static struct ue_alloc alloc(uint8_t fn, uint64_t address, uint64_t size, int32_t stack_id) {
    struct ue_alloc a;
    memset(&a, 0, sizeof a);
    a.h.time_ns = 123456789000ull;
    a.h.tid = 4243;
    a.h.type = UE_ALLOC;
    a.h.function = fn;
    a.address = address;
    a.size = size;
    a.stack_id = stack_id;
    return a;
}

static struct ue_release release(uint8_t type, uint8_t fn, uint16_t flags, uint64_t address, uint64_t length) {
    struct ue_release r;
    memset(&r, 0, sizeof r);
    r.h.time_ns = 123456790000ull;
    r.h.tid = 4243;
    r.h.type = type;
    r.h.function = fn;
    r.h.flags = flags;
    r.address = address;
    r.length = length;
    return r;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *dir = argv[1];

    FILE *f = open_seed(dir, "malloc-free");
    struct ue_alloc a = alloc(UE_FN_MALLOC, 0x55550000a010ull, 64, 3);
    put(f, &a, sizeof a);
    a = alloc(UE_FN_CALLOC, 0x55550000a060ull, 4096, 4);
    put(f, &a, sizeof a);
    struct ue_release r = release(UE_FREE, UE_FN_FREE, 0, 0x55550000a010ull, 0);
    put(f, &r, sizeof r);
    fclose(f);

    f = open_seed(dir, "realloc");
    a = alloc(UE_FN_MALLOC, 0x55550000b010ull, 32, 5);
    put(f, &a, sizeof a);
    r = release(UE_FREE, UE_FN_REALLOC, UE_F_PENDING, 0x55550000b010ull, 0);
    put(f, &r, sizeof r);
    a = alloc(UE_FN_REALLOC, 0x55550000c010ull, 4000, 5);
    a.old_address = 0x55550000b010ull;
    put(f, &a, sizeof a);
    r = release(UE_FREE, UE_FN_REALLOC, UE_F_PENDING, 0x55550000c010ull, 0);
    put(f, &r, sizeof r);
    r = release(UE_UNDO, UE_FN_REALLOC, 0, 0x55550000c010ull, 0);
    put(f, &r, sizeof r);
    fclose(f);

    f = open_seed(dir, "mappings");
    a = alloc(UE_FN_MMAP, 0x7f0000100000ull, 1 << 20, 6);
    put(f, &a, sizeof a);
    a = alloc(UE_FN_MMAP, 0x7f0000300000ull, 8192, 7);
    a.h.flags = UE_F_FILE;
    put(f, &a, sizeof a);
    r = release(UE_MUNMAP, UE_FN_MREMAP, UE_F_PENDING, 0x7f0000100000ull, 1 << 20);
    put(f, &r, sizeof r);
    a = alloc(UE_FN_MREMAP, 0x7f0000500000ull, 2 << 20, 6);
    a.old_address = 0x7f0000100000ull;
    put(f, &a, sizeof a);
    r = release(UE_MUNMAP, UE_FN_MUNMAP, 0, 0x7f0000500000ull, 4096);
    put(f, &r, sizeof r);
    fclose(f);

    f = open_seed(dir, "inline-stack-and-loader");
    struct ue_alloc_inline ai;
    memset(&ai, 0, sizeof ai);
    ai.a = alloc(UE_FN_POSIX_MEMALIGN, 0x55550000d000ull, 256, -1);
    ai.a.nr_frames = 4;
    for (int i = 0; i < 4; i++) ai.frames[i] = 0x555500001000ull + 0x40 * (i + 1);
    put(f, &ai, sizeof ai.a + 4 * sizeof ai.frames[0]);
    ai.a.address = 0x55550000e000ull;
    ai.a.h.function = UE_FN_ALIGNED_ALLOC;
    put(f, &ai, sizeof ai.a + 4 * sizeof ai.frames[0]);
    r = release(UE_LOADER, UE_FN_COUNT, 0, 0, 0);
    put(f, &r, sizeof r);
    a = alloc(UE_FN_MALLOC, 0x55550000f000ull, 24, -1);
    put(f, &a, sizeof a);
    fclose(f);
    return 0;
}
