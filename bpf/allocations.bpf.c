/* Outstanding kernel allocations: slab objects, pages and percpu chunks, each with its kernel stack.
 *
 * Raw tracepoints, not classic ones: classic tracepoint programs share one per-CPU recursion guard, so
 * a kfree in an interrupt that lands while any of them runs is dropped silently. Raw tracepoints guard
 * each program separately (6.1+), and the kernel counts every skipped run (recursion_misses), which the
 * loader reports. They also need no tracefs.
 *
 * Frees go through two programs on the same tracepoint, a primary and a backup. A raw tracepoint
 * program misses a free only through recursion: an interrupt frees memory while that same program is
 * running on this CPU. The backup then runs (it is not busy) and sends the free. Normally the primary
 * has claimed the address and the backup does nothing; the claims form a small per-CPU stack, because
 * an interrupt can also come between the two programs, or while the backup runs, and its own pair of
 * programs must not disturb the outer pair's claim. A free is lost only when both programs are busy,
 * which takes three levels of nesting; the loader counts those as primary misses the backup did not
 * rescue. */
#include "common.bpf.h"

/* Stacks by id, deduplicated in the kernel. Without BPF_F_REUSE_STACKID an id never changes its
 * stack, so the consumer can cache id -> frames; a hash collision fails instead, and that allocation
 * carries its frames inline. The loader sets the size. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, KE_MAX_FRAMES * sizeof(__u64));
} stacks SEC(".maps");

enum free_slot { SLOT_KFREE, SLOT_CACHE_FREE, SLOT_PAGE_FREE, SLOT_PERCPU_FREE, SLOT_COUNT };

#define CLAIM_DEPTH 8

/* Addresses the primary sent whose backup has not run yet, innermost last. */
struct claim_stack {
	__u32 top;
	__u32 pad;
	__u64 address[CLAIM_DEPTH];
};

/* Per CPU and per free tracepoint. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLOT_COUNT);
	__type(key, __u32);
	__type(value, struct claim_stack);
} claims SEC(".maps");

static __always_inline bool comm_matches(const char *comm)
{
	for (int i = 0; i < KE_COMM_LEN; i++) {
		if (comm[i] != cfg.filter_comm[i])
			return false;
		if (comm[i] == 0)
			return true;
	}
	return true;
}

static __always_inline int emit_alloc(struct bpf_raw_tracepoint_args *ctx, __u8 kind, __u8 function, __u64 address,
				      __u64 size)
{
	/* NULL is a failed allocation; ZERO_SIZE_PTR (16) is kmalloc(0) and owns nothing. */
	if (address <= 16)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == cfg.self_tgid)
		return 0;
	if (cfg.filter_tgid && tgid != cfg.filter_tgid)
		return 0;
	char comm[KE_COMM_LEN];
	bpf_get_current_comm(comm, sizeof(comm));
	if (cfg.filter_comm[0] && !comm_matches(comm))
		return 0;

	long stack_id = bpf_get_stackid(ctx, &stacks, 0);
	struct ke_alloc *a;
	if (stack_id >= 0) {
		a = bpf_ringbuf_reserve(&events, sizeof(*a), 0);
		if (!a)
			goto full;
		a->nr_frames = 0;
	} else {
		struct ke_alloc_inline *w = bpf_ringbuf_reserve(&events, sizeof(*w), 0);
		if (!w)
			goto full;
		long n = bpf_get_stack(ctx, w->frames, sizeof(w->frames), 0);
		if (n < 0) {
			n = 0;
			count(KC_STACK_FAILED, 1);
		} else {
			count(KC_STACK_INLINE, 1);
		}
		a = &w->a;
		a->nr_frames = n / sizeof(__u64);
	}
	fill_header(&a->h, KE_ALLOC);
	a->address = address;
	a->size = size;
	a->stack_id = stack_id;
	a->kind = kind;
	a->function = function;
	__builtin_memcpy(a->comm, comm, sizeof(comm));
	bpf_ringbuf_submit(a, SUBMIT_FLAGS);
	return 0;
full:
	count(KC_RING_FULL_ALLOC, 1);
	count(KC_RING_FULL_BYTES, size);
	return 0;
}

static __always_inline void emit_free(__u8 kind, __u64 address)
{
	struct ke_free *f = bpf_ringbuf_reserve(&events, sizeof(*f), 0);
	if (!f) {
		count(KC_RING_FULL_FREE, 1);
		return;
	}
	fill_header(&f->h, KE_FREE);
	f->address = address;
	f->kind = kind;
	__builtin_memset(f->pad, 0, sizeof(f->pad));
	bpf_ringbuf_submit(f, SUBMIT_FLAGS);
}

static __always_inline int primary_free(__u32 slot, __u8 kind, __u64 address)
{
	if (address <= 16)
		return 0;
	emit_free(kind, address);
	struct claim_stack *c = bpf_map_lookup_elem(&claims, &slot);
	if (c && c->top < CLAIM_DEPTH) {
		c->address[c->top & (CLAIM_DEPTH - 1)] = address;
		c->top++;
	}
	return 0;
}

static __always_inline int backup_free(__u32 slot, __u8 kind, __u64 address)
{
	if (address <= 16)
		return 0;
	struct claim_stack *c = bpf_map_lookup_elem(&claims, &slot);
	if (c) {
		__u32 top = c->top;
		/* The claim is usually on top. Below it only when an interrupt ran a pair of programs while
		 * this backup was busy: those claims above ours are finished, so they go too. */
		for (int i = CLAIM_DEPTH - 1; i >= 0; i--) {
			if (i < top && c->address[i] == address) {
				c->top = i;
				return 0;
			}
		}
	}
	/* The primary did not run for this free: it was busy lower on this CPU's stack. */
	count(KC_FREE_RESCUED, 1);
	emit_free(kind, address);
	return 0;
}

/* The primary and the backup program of one free tracepoint; `arg` is the freed pointer's argument. */
#define FREE_PROGRAMS(name, slot, kind, arg)                                       \
	SEC("raw_tp")                                                               \
	int name(struct bpf_raw_tracepoint_args *ctx)                               \
	{                                                                           \
		return primary_free(slot, kind, ctx->args[arg]);                     \
	}                                                                           \
	SEC("raw_tp")                                                               \
	int name##_backup(struct bpf_raw_tracepoint_args *ctx)                      \
	{                                                                           \
		return backup_free(slot, kind, ctx->args[arg]);                      \
	}

/* kmem:kmalloc (and kmem:kmalloc_node before 6.1): call_site, ptr, bytes_req, bytes_alloc, ... */
SEC("raw_tp")
int kmalloc(struct bpf_raw_tracepoint_args *ctx)
{
	return emit_alloc(ctx, KE_KIND_SLAB, KE_FN_KMALLOC, ctx->args[1], ctx->args[3]);
}

/* kmem:kmem_cache_alloc. Since 6.1: call_site, ptr, cache, gfp, node (size from the cache); before:
 * call_site, ptr, bytes_req, bytes_alloc, gfp. */
SEC("raw_tp")
int kmem_cache_alloc(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 size;
	if (bpf_core_type_exists(struct trace_event_raw_kmem_cache_alloc)) {
		struct kmem_cache *s = (void *)ctx->args[2];
		size = BPF_CORE_READ(s, size);
	} else {
		size = ctx->args[3];
	}
	return emit_alloc(ctx, KE_KIND_SLAB, KE_FN_KMEM_CACHE_ALLOC, ctx->args[1], size);
}

/* kmem:kmem_cache_alloc_node, before 6.1 only: call_site, ptr, bytes_req, bytes_alloc, gfp, node. */
SEC("raw_tp")
int kmem_cache_alloc_node(struct bpf_raw_tracepoint_args *ctx)
{
	return emit_alloc(ctx, KE_KIND_SLAB, KE_FN_KMEM_CACHE_ALLOC, ctx->args[1], ctx->args[3]);
}

/* kmem:kfree: call_site, ptr. */
FREE_PROGRAMS(kfree, SLOT_KFREE, KE_KIND_SLAB, 1)

/* kmem:kmem_cache_free: call_site, ptr, cache (the cache since 5.12). */
FREE_PROGRAMS(kmem_cache_free, SLOT_CACHE_FREE, KE_KIND_SLAB, 1)

/* kmem:mm_page_alloc: page, order, gfp, migratetype. A page is keyed by its struct page address, which
 * is unique per page frame; the pfn itself would need vmemmap's base, which BPF cannot see everywhere. */
SEC("raw_tp")
int mm_page_alloc(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 order = (__u32)ctx->args[1];
	return emit_alloc(ctx, KE_KIND_PAGE, KE_FN_PAGE_ALLOC, ctx->args[0], (__u64)cfg.page_size << (order & 31));
}

/* kmem:mm_page_free: page, order. */
FREE_PROGRAMS(mm_page_free, SLOT_PAGE_FREE, KE_KIND_PAGE, 0)

/* percpu:percpu_alloc_percpu. Since 6.0: call_site, reserved, is_atomic, size, align, base_addr, off,
 * ptr, bytes_alloc, gfp; before: the same without call_site, bytes_alloc and gfp. */
SEC("raw_tp")
int percpu_alloc_percpu(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 ptr, size;
	if (bpf_core_field_exists(struct trace_event_raw_percpu_alloc_percpu, call_site)) {
		ptr = ctx->args[7];
		size = bpf_core_field_exists(struct trace_event_raw_percpu_alloc_percpu, bytes_alloc)
			       ? ctx->args[8]
			       : ctx->args[3] * cfg.nr_cpus;
	} else {
		ptr = ctx->args[6];
		size = ctx->args[2] * cfg.nr_cpus;
	}
	return emit_alloc(ctx, KE_KIND_PERCPU, KE_FN_PERCPU_ALLOC, ptr, size);
}

/* percpu:percpu_free_percpu: base_addr, off, ptr. */
FREE_PROGRAMS(percpu_free_percpu, SLOT_PERCPU_FREE, KE_KIND_PERCPU, 2)

/* Attached to tracepoints the user asked for only to count their hits. */
SEC("raw_tp")
int count_hits(struct bpf_raw_tracepoint_args *ctx)
{
	count(KC_EXTRA_HITS, 1);
	return 0;
}
