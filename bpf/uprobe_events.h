/* The records the BPF-only mode's uprobe programs (uprobes.bpf.c) write into their ring buffer, their
 * counters and the settings the loader writes before loading. Included by the BPF program and, through
 * CLibBPF, by the Swift consumer (Sources/Collector/UprobeSource), so the layout is written once.
 * Fixed-width fields only, every field naturally aligned.
 *
 * Ordering is the shim's (leakring.h): a free, munmap or realloc's pending free is reserved in the ring
 * at the function's entry, before the real call runs; an allocation at its return, after. The ring
 * buffer hands records out in reservation order, so a block freed by one thread and handed to another
 * is never seen in the wrong order. */
#ifndef LEAK_UPROBE_EVENTS_H
#define LEAK_UPROBE_EVENTS_H

#include <linux/types.h>

/* PERF_MAX_STACK_DEPTH, the kernel's default limit for one user stack. */
#define UE_MAX_FRAMES 127
/* Modules probed at once (libc, the executable, an allocator library). */
#define UE_MAX_MODULES 8

enum ue_type {
	UE_ALLOC = 1,  /* heap block or mapping (function says which) */
	UE_FREE = 2,   /* free, or realloc's pending free */
	UE_MUNMAP = 3, /* munmap, or mremap's pending unmap */
	UE_UNDO = 4,   /* the realloc/mremap that issued a pending release failed */
	UE_LOADER = 5, /* the dynamic loader changed the set of loaded objects (dlopen, dlclose) */
};

/* Which entry point. The loader attaches one program pair per function. */
enum ue_function {
	UE_FN_MALLOC = 0,
	UE_FN_CALLOC,
	UE_FN_REALLOC,
	UE_FN_REALLOCARRAY,
	UE_FN_POSIX_MEMALIGN,
	UE_FN_ALIGNED_ALLOC,
	UE_FN_MEMALIGN,
	UE_FN_VALLOC,
	UE_FN_PVALLOC,
	UE_FN_FREE,
	UE_FN_MMAP,
	UE_FN_MUNMAP,
	UE_FN_MREMAP,
	UE_FN_COUNT,
};

#define UE_F_PENDING 1 /* a realloc's free or an mremap's unmap: an ALLOC replacing it or an UNDO follows */
#define UE_F_FILE 2    /* an mmap of a file */

/* Counters the programs keep in a per-CPU array; the loader sums the CPUs. */
enum ue_counter {
	/* Records the ring buffer had no room for, and the bytes of the allocations among them. */
	UC_RING_FULL = 0,
	UC_RING_FULL_BYTES,
	/* Calls whose entry could not be remembered for their return: the per-thread map was full. */
	UC_CALLS_FULL,
	/* Allocations whose stack could not be captured at all. */
	UC_STACK_FAILED,
	/* Stack-map collisions: the frames went inline in the record instead (not a loss). */
	UC_STACK_INLINE,
	/* Calls whose return probe never fired (a new call found the old one still open, or the thread
	 * exited inside it). */
	UC_RETURN_MISSED,
	/* Calls the allocator made itself (malloc inside realloc, mmap inside malloc): not the program's. */
	UC_NESTED,
	/* Sampling: sampled blocks the set of sampled addresses had no room for (dropped, not recorded). */
	UC_SAMPLED_FULL,
	/* Sampling: allocations sampled out at entry (no stack, no record). Not a loss. */
	UC_SAMPLED_OUT,
	UC_COUNT,
};

/* Sampling's exponential draws: bins of the mantissa of a uniform 32-bit number (see uprobes.bpf.c). */
#define UE_SAMPLE_BINS 1024

/* Set by the loader in .rodata before the program loads. */
struct ue_config {
	__u32 tgid;      /* the traced process */
	__u32 page_size;
	/* Poisson sampling by bytes, the shim's scheme (leakring.h, "Sampling"): the mean interval, 0 to
	 * record every allocation; interval * ln 2; and interval * -ln((UE_SAMPLE_BINS + i + 0.5) /
	 * (2 * UE_SAMPLE_BINS)) for each bin i, rounded to bytes. */
	__u64 sample_bytes;
	__u64 sample_ln2;
	__u64 sample_bin[UE_SAMPLE_BINS];
};

/* Set by the loader at run time in the `control` array. */
struct ue_control {
	/* Launch mode: stop the process (SIGSTOP) at each dynamic-loader event, until the allocator probes
	 * are attached. */
	__u32 stop_at_loader;
	__u32 pad;
	/* The probed modules' text, [lo, hi): an mmap family call made from inside one of them is the
	 * allocator's own (a malloc arena, a thread stack), which the shim never sees either. */
	__u64 lo[UE_MAX_MODULES];
	__u64 hi[UE_MAX_MODULES];
};

struct ue_header {
	__u64 time_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u32 tid;
	__u8 type;
	__u8 function;
	__u16 flags;
};

/* An allocation. When stack_id < 0 the stack map had no room and nr_frames return addresses follow
 * the record (innermost first); nr_frames 0 with stack_id < 0 is an allocation without a stack. */
struct ue_alloc {
	struct ue_header h;
	__u64 address;
	__u64 size;
	__u64 old_address; /* realloc/mremap: what it replaces (its pending release came earlier), or 0 */
	__s32 stack_id;
	__u32 nr_frames;
};

struct ue_alloc_inline {
	struct ue_alloc a;
	__u64 frames[UE_MAX_FRAMES];
};

/* UE_FREE, UE_MUNMAP, UE_UNDO and UE_LOADER. */
struct ue_release {
	struct ue_header h;
	__u64 address;
	__u64 length; /* munmap only */
};

#endif
