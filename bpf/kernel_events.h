/* The records the kernel-side BPF programs write into their ring buffer, and the settings the loader
 * writes into them before loading. Included by the BPF programs and, through CLibBPF, by the Swift
 * consumer, so the layout is written once. Fixed-width fields only, every field naturally aligned. */
#ifndef LEAK_KERNEL_EVENTS_H
#define LEAK_KERNEL_EVENTS_H

#include <linux/types.h>

#define KE_COMM_LEN 16
/* PERF_MAX_STACK_DEPTH, the kernel's default limit for one stack. */
#define KE_MAX_FRAMES 127
#define KE_MEMCG_DEPTH 8
#define KE_MEMCG_NAME_LEN 64
#define KE_SHRINKER_NAME_LEN 32

enum ke_type {
	KE_ALLOC = 1,
	KE_FREE = 2,
	KE_OOM_VICTIM = 3,
	KE_OOM_REAPER = 4,
	KE_RECLAIM = 5,
	KE_KSWAPD = 6,
	KE_SHRINK = 7,
};

/* Address spaces: kfree and kmem_cache_free both free slab objects, so there is one slab space. */
enum ke_kind {
	KE_KIND_SLAB = 0,
	KE_KIND_PAGE = 1,
	KE_KIND_PERCPU = 2,
};

enum ke_function {
	KE_FN_KMALLOC = 0,
	KE_FN_KMEM_CACHE_ALLOC = 1,
	KE_FN_PAGE_ALLOC = 2,
	KE_FN_PERCPU_ALLOC = 3,
};

enum ke_reaper_step {
	KE_REAPER_WAKE = 0,
	KE_REAPER_START = 1,
	KE_REAPER_FINISH = 2,
	KE_REAPER_SKIP = 3,
};

enum ke_reclaim_kind {
	KE_RECLAIM_DIRECT = 0,
	KE_RECLAIM_MEMCG = 1,
};

/* Counters the programs keep in a per-CPU array; the loader sums the CPUs. */
enum ke_counter {
	/* Allocation or free records the ring buffer had no room for. */
	KC_RING_FULL_ALLOC = 0,
	KC_RING_FULL_FREE,
	/* Bytes of the dropped allocations. */
	KC_RING_FULL_BYTES,
	/* OOM, reclaim, kswapd and shrinker records dropped. */
	KC_RING_FULL_OTHER,
	/* Stack-map collisions: the stack went inline in the record instead. */
	KC_STACK_INLINE,
	/* No stack at all could be captured. */
	KC_STACK_FAILED,
	/* Frees that only the backup program saw: the primary was busy on this CPU (an interrupt freed
	 * memory while the primary ran), which would otherwise have been a missed free. */
	KC_FREE_RESCUED,
	KC_WRITEPAGE,
	KC_RECLAIM_RETRY_ZONE,
	KC_COMPACT_RETRY,
	/* Reclaim or shrink ends whose begin was not seen (started before the collector). */
	KC_UNMATCHED_END,
	/* Hits of tracepoints attached only to count them (the extra-tracepoint option). */
	KC_EXTRA_HITS,
	KC_COUNT,
};

/* Set by the loader in .rodata before the programs load. */
struct ke_config {
	__u32 self_tgid;   /* the collector: its own allocations are not traced */
	__u32 filter_tgid; /* 0: every process */
	__u32 page_size;
	__u32 nr_cpus;
	char filter_comm[KE_COMM_LEN]; /* empty: every command */
};

struct ke_header {
	__u64 time_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u32 tgid;
	__u32 tid;
	__u8 type;
	__u8 pad[7];
};

/* An allocation. When stack_id < 0 the stack map had no room and nr_frames return addresses follow
 * the record (innermost first). */
struct ke_alloc {
	struct ke_header h;
	__u64 address;
	__u64 size;
	__s32 stack_id;
	__u16 nr_frames;
	__u8 kind;
	__u8 function;
	char comm[KE_COMM_LEN];
};

struct ke_alloc_inline {
	struct ke_alloc a;
	__u64 frames[KE_MAX_FRAMES];
};

struct ke_free {
	struct ke_header h;
	__u64 address;
	__u8 kind;
	__u8 pad[7];
};

#define KE_OOM_HAS_TASK 1      /* the victim's task fields are filled (mark_victim passes the task) */
#define KE_OOM_HAS_MEMCG 2

/* oom:mark_victim. The header's tgid/tid/comm are the task that ran the OOM killer (the trigger). */
struct ke_oom {
	struct ke_header h;
	__u32 victim_tgid;
	__u32 victim_tid;
	__u32 uid;
	__s32 oom_score_adj;
	__u64 total_vm_pages;
	__u64 anon_rss_pages;
	__u64 file_rss_pages;
	__u64 shmem_rss_pages;
	__u64 pgtables_bytes;
	__u64 memcg_max_pages;
	__u64 memcg_usage_pages;
	__u32 flags;
	__u32 memcg_depth;
	char victim_comm[KE_COMM_LEN];
	char trigger_comm[KE_COMM_LEN];
	/* The victim's memory cgroup, leaf first, up to the hierarchy root. */
	char memcg[KE_MEMCG_DEPTH][KE_MEMCG_NAME_LEN];
};

struct ke_reaper {
	struct ke_header h;
	__u32 pid;
	__u32 step;
};

struct ke_reclaim {
	struct ke_header h; /* time_ns: when it ended */
	__u64 duration_ns;
	__u64 reclaimed_pages;
	__u32 kind;
	__u32 pad;
	char comm[KE_COMM_LEN];
};

struct ke_kswapd {
	struct ke_header h;
	__s32 nid;
	__u32 wake; /* 1 wake, 0 sleep */
};

struct ke_shrink {
	struct ke_header h;
	__u64 scan_objects; /* the shrinker's scan function, for its name */
	__u64 duration_ns;
	__s64 freed;
	__s32 nid;
	__u32 pad;
	char name[KE_SHRINKER_NAME_LEN]; /* CONFIG_SHRINKER_DEBUG's name, or empty */
};

#endif
