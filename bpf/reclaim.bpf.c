/* Reclaim: how long tasks stall in direct and memcg reclaim, kswapd's wakes and sleeps, and the time
 * each shrinker takes. Begin/end pairs are matched per thread in the kernel, so only one record per
 * completed reclaim crosses the ring. */
#include "common.bpf.h"

struct reclaim_start {
	__u64 time_ns;
	__u32 kind;
	__u32 pad;
};

/* LRU: a thread that began reclaim and died before the end must not pin an entry forever. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct reclaim_start);
} reclaim_starts SEC(".maps");

struct shrink_start {
	__u64 time_ns;
	__u64 shrinker;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct shrink_start);
} shrink_starts SEC(".maps");

static __always_inline int reclaim_begin(__u32 kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct reclaim_start s = { .time_ns = bpf_ktime_get_ns(), .kind = kind };
	bpf_map_update_elem(&reclaim_starts, &tid, &s, BPF_ANY);
	return 0;
}

static __always_inline int reclaim_end(__u32 kind, __u64 reclaimed)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct reclaim_start *s = bpf_map_lookup_elem(&reclaim_starts, &tid);
	if (!s || s->kind != kind) {
		count(KC_UNMATCHED_END, 1);
		return 0;
	}
	__u64 start = s->time_ns;
	bpf_map_delete_elem(&reclaim_starts, &tid);
	struct ke_reclaim *r = reserve_other(sizeof(*r));
	if (!r)
		return 0;
	fill_header(&r->h, KE_RECLAIM);
	r->duration_ns = r->h.time_ns - start;
	r->reclaimed_pages = reclaimed;
	r->kind = kind;
	r->pad = 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_ringbuf_submit(r, SUBMIT_FLAGS);
	return 0;
}

/* vmscan:mm_vmscan_direct_reclaim_begin / _end (nr_reclaimed). */
SEC("raw_tp")
int direct_reclaim_begin(struct bpf_raw_tracepoint_args *ctx)
{
	return reclaim_begin(KE_RECLAIM_DIRECT);
}

SEC("raw_tp")
int direct_reclaim_end(struct bpf_raw_tracepoint_args *ctx)
{
	return reclaim_end(KE_RECLAIM_DIRECT, ctx->args[0]);
}

/* vmscan:mm_vmscan_memcg_reclaim_begin / _end (nr_reclaimed). */
SEC("raw_tp")
int memcg_reclaim_begin(struct bpf_raw_tracepoint_args *ctx)
{
	return reclaim_begin(KE_RECLAIM_MEMCG);
}

SEC("raw_tp")
int memcg_reclaim_end(struct bpf_raw_tracepoint_args *ctx)
{
	return reclaim_end(KE_RECLAIM_MEMCG, ctx->args[0]);
}

static __always_inline int kswapd(__s32 nid, __u32 wake)
{
	struct ke_kswapd *k = reserve_other(sizeof(*k));
	if (!k)
		return 0;
	fill_header(&k->h, KE_KSWAPD);
	k->nid = nid;
	k->wake = wake;
	bpf_ringbuf_submit(k, SUBMIT_FLAGS);
	return 0;
}

/* vmscan:mm_vmscan_kswapd_wake: nid, zid, order. */
SEC("raw_tp")
int kswapd_wake(struct bpf_raw_tracepoint_args *ctx)
{
	return kswapd((__s32)ctx->args[0], 1);
}

/* vmscan:mm_vmscan_kswapd_sleep: nid. */
SEC("raw_tp")
int kswapd_sleep(struct bpf_raw_tracepoint_args *ctx)
{
	return kswapd((__s32)ctx->args[0], 0);
}

/* vmscan:mm_shrink_slab_start: shrinker, shrink_control, ... */
SEC("raw_tp")
int shrink_slab_start(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct shrink_start s = { .time_ns = bpf_ktime_get_ns(), .shrinker = ctx->args[0] };
	bpf_map_update_elem(&shrink_starts, &tid, &s, BPF_ANY);
	return 0;
}

/* vmscan:mm_shrink_slab_end: shrinker, nid, shrinker_retval (objects freed), unused, new, total_scan. */
SEC("raw_tp")
int shrink_slab_end(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct shrink_start *s = bpf_map_lookup_elem(&shrink_starts, &tid);
	if (!s || s->shrinker != ctx->args[0]) {
		count(KC_UNMATCHED_END, 1);
		return 0;
	}
	__u64 start = s->time_ns;
	bpf_map_delete_elem(&shrink_starts, &tid);
	struct ke_shrink *r = reserve_other(sizeof(*r));
	if (!r)
		return 0;
	fill_header(&r->h, KE_SHRINK);
	struct shrinker *shr = (void *)ctx->args[0];
	r->duration_ns = r->h.time_ns - start;
	r->scan_objects = (__u64)BPF_CORE_READ(shr, scan_objects);
	r->freed = (__s32)ctx->args[2];
	r->nid = (__s32)ctx->args[1];
	r->pad = 0;
	r->name[0] = 0;
	if (bpf_core_field_exists(shr->name)) {
		const char *name = BPF_CORE_READ(shr, name);
		if (!name || bpf_probe_read_kernel_str(r->name, sizeof(r->name), name) < 0)
			r->name[0] = 0;
	}
	bpf_ringbuf_submit(r, SUBMIT_FLAGS);
	return 0;
}

/* vmscan:mm_vmscan_write_folio (mm_vmscan_writepage before 5.19): reclaim writing a dirty page out. */
SEC("raw_tp")
int write_folio(struct bpf_raw_tracepoint_args *ctx)
{
	count(KC_WRITEPAGE, 1);
	return 0;
}
