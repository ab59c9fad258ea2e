/* What every kernel-side BPF object shares: the ring buffer, the counters and the loader's settings.
 * Each object declares these maps; the loader creates them once and hands the same maps to the
 * others (bpf_map__reuse_fd), so there is one ring and one counter array. */
#ifndef LEAK_COMMON_BPF_H
#define LEAK_COMMON_BPF_H

#include "kernel_types.h"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "kernel_events.h"

/* The loader sets the size (a power-of-two number of bytes). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KC_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

const volatile struct ke_config cfg = {};

static __always_inline void count(enum ke_counter c, __u64 n)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);
	if (v)
		*v += n;
}

static __always_inline void fill_header(struct ke_header *h, __u8 type)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	h->time_ns = bpf_ktime_get_ns();
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->type = type;
	__builtin_memset(h->pad, 0, sizeof(h->pad));
}

/* A ring buffer record for the rarer events (OOM, reclaim, kswapd, shrinkers), counted when the ring
 * is full. `size` must be a constant. */
static __always_inline void *reserve_other(__u64 size)
{
	void *r = bpf_ringbuf_reserve(&events, size, 0);
	if (!r)
		count(KC_RING_FULL_OTHER, 1);
	return r;
}

/* The consumer polls every few milliseconds, so no record needs a wakeup: skipping it keeps the
 * cost per event down (a wakeup is an irq_work per record once the consumer has caught up). */
#define SUBMIT_FLAGS BPF_RB_NO_WAKEUP

char LICENSE[] SEC("license") = "GPL";

#endif
