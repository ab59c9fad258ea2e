/* BPF-only mode: the allocator functions of one process, traced through uprobes and uretprobes on the
 * libc (or allocator) it really maps, with user stacks walked through frame pointers. The records are
 * uprobe_events.h's; the order rules are the shim's (see there).
 *
 * One entry program and one return program serve every function: the attach cookie says which function
 * (low byte). An entry remembers its arguments per thread, keyed by the stack pointer at entry, so that
 *  - a call the allocator makes itself (malloc inside realloc, free inside realloc(p, 0)) is recognized
 *    by its lower stack pointer, and a tail call (reallocarray jumping to realloc) by the same one, and
 *    left out, as the shim never sees them either;
 *  - a return belongs to its entry only if the stack pointer is above the entry's (a nested call's
 *    return is below);
 *  - an entry that finds an older call still open below its own stack pointer (a deeper frame) knows
 *    that call's return never fired, and counts it.
 *
 * Sampling (cfg.sample_bytes != 0) is the shim's (leakring.h, "Sampling"), decided at entry: each thread's
 * countdown to its next sample point lives in its `calls` entry, an allocation of n < interval bytes is
 * sampled when a point falls inside it, and a sampled-out call stays open (so calls nested in it are still
 * recognized) but its return emits nothing and captures no stack. Sampled blocks go in the `sampled` set;
 * a free emits a record only for an address it removes from there. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "uprobe_events.h"

#define MAP_ANONYMOUS 0x20
#define MREMAP_DONTUNMAP 4
#define SIGSTOP 19

/* The loader sets the size (a power-of-two number of bytes). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, UC_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Stacks by id. Without BPF_F_REUSE_STACKID an id never changes its stack, so the consumer caches
 * id -> frames; a collision fails instead, and that allocation carries its frames inline. The loader
 * sets the size and the value size (the depth). */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 64 * sizeof(__u64));
} stacks SEC(".maps");

/* One open call per thread, and the thread's sampling countdown. */
struct call {
	__u64 sp;       /* at entry: points at the return address */
	__u64 size;
	__u64 old;      /* realloc/mremap: the block or range released (its release was recorded), or 0 */
	__u64 out;      /* posix_memalign: where the pointer goes */
	__s64 sample_left; /* bytes to this thread's next sample point; 0 before its first draw */
	__u32 function;
	__u16 flags;
	__u8 active;
	__u8 pending;   /* a pending release was sent: an ALLOC or an UNDO must follow */
	__u8 sampled;   /* the block this call returns is recorded */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ue_control);
} control SEC(".maps");

/* Sampling: the addresses of the sampled blocks still live. Allocated as it fills; the loader sets the
 * size (1 without sampling). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u8);
} sampled SEC(".maps");

const volatile struct ue_config cfg = {};

static __always_inline void count(enum ue_counter c, __u64 n)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);
	if (v)
		*v += n;
}

static __always_inline void fill_header(struct ue_header *h, __u64 pid_tgid, __u8 type, __u8 function, __u16 flags)
{
	h->time_ns = bpf_ktime_get_ns();
	h->tid = (__u32)pid_tgid;
	h->type = type;
	h->function = function;
	h->flags = flags;
}

/* The consumer polls every few milliseconds, so no record needs a wakeup (see common.bpf.h). */
#define SUBMIT_FLAGS BPF_RB_NO_WAKEUP

static __always_inline void emit_release(__u64 pid_tgid, __u8 type, __u8 function, __u16 flags, __u64 address, __u64 length)
{
	struct ue_release *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count(UC_RING_FULL, 1);
		return;
	}
	fill_header(&r->h, pid_tgid, type, function, flags);
	r->address = address;
	r->length = length;
	bpf_ringbuf_submit(r, SUBMIT_FLAGS);
}

static __always_inline void emit_alloc(struct pt_regs *ctx, __u64 pid_tgid, __u8 function, __u16 flags, __u64 address,
				       __u64 size, __u64 old)
{
	long stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	struct ue_alloc *a;
	if (stack_id >= 0) {
		a = bpf_ringbuf_reserve(&events, sizeof(*a), 0);
		if (!a)
			goto full;
		a->nr_frames = 0;
	} else {
		struct ue_alloc_inline *w = bpf_ringbuf_reserve(&events, sizeof(*w), 0);
		if (!w)
			goto full;
		long n = bpf_get_stack(ctx, w->frames, sizeof(w->frames), BPF_F_USER_STACK);
		if (n < 0) {
			n = 0;
			count(UC_STACK_FAILED, 1);
		} else {
			count(UC_STACK_INLINE, 1);
		}
		a = &w->a;
		a->nr_frames = n / sizeof(__u64);
	}
	fill_header(&a->h, pid_tgid, UE_ALLOC, function, flags);
	a->address = address;
	a->size = size;
	a->old_address = old;
	a->stack_id = stack_id;
	bpf_ringbuf_submit(a, SUBMIT_FLAGS);
	return;
full:
	count(UC_RING_FULL, 1);
	count(UC_RING_FULL_BYTES, size);
}

/* A distance to the next sample point: exponential with mean cfg.sample_bytes, at least 1. A uniform
 * u = r / 2^32 is m * 2^-k with m in [1/2, 1), so -ln u = k ln 2 - ln m; m's next ten bits pick its bin,
 * whose midpoint's -ln the loader tabulated (within 1/2048 of the exact value: far below sampling noise). */
static __always_inline __s64 draw(void)
{
	__u64 r = bpf_get_prandom_u32(), k = 0;
	if (r == 0)
		return (__s64)(32 * cfg.sample_ln2 + 1);
	if (!(r & 0xffff0000)) { k += 16; r <<= 16; }
	if (!(r & 0xff000000)) { k += 8; r <<= 8; }
	if (!(r & 0xf0000000)) { k += 4; r <<= 4; }
	if (!(r & 0xc0000000)) { k += 2; r <<= 2; }
	if (!(r & 0x80000000)) { k += 1; r <<= 1; }
	__s64 d = (__s64)(k * cfg.sample_ln2 + cfg.sample_bin[(r >> 21) & (UE_SAMPLE_BINS - 1)]);
	return d > 0 ? d : 1;
}

/* Whether an allocation of n bytes is recorded, moving this thread's countdown (in c) past it: always
 * without sampling and for n >= the interval; else when a sample point falls in its n bytes. A thread's
 * first allocation starts its stream at a random point, like every later one (the shim's rule). */
static __always_inline int sample(struct call *c, __u64 n)
{
	__u64 interval = cfg.sample_bytes;
	if (interval == 0 || n >= interval)
		return 1;
	__s64 left = c->sample_left;
	if (left <= 0)
		left = draw();
	left -= (__s64)n;
	if (left > 0) {
		c->sample_left = left;
		count(UC_SAMPLED_OUT, 1);
		return 0;
	}
	/* points past the first inside this block change nothing; n < interval, so a few draws suffice */
	for (int i = 0; i < 64 && left <= 0; i++)
		left += draw();
	c->sample_left = left > 0 ? left : draw();
	return 1;
}

/* Whether the release of heap block p is recorded: always without sampling, else when p was sampled
 * (and then it leaves the set). */
static __always_inline int recorded_release(__u64 p)
{
	return cfg.sample_bytes == 0 || bpf_map_delete_elem(&sampled, &p) == 0;
}

/* Sampling: p is a recorded block from now on; 0 when the set is full (then it is not recorded). */
static __always_inline int note_sampled(__u64 p)
{
	__u8 one = 1;
	if (cfg.sample_bytes == 0)
		return 1;
	if (bpf_map_update_elem(&sampled, &p, &one, BPF_ANY) == 0)
		return 1;
	count(UC_SAMPLED_FULL, 1);
	return 0;
}

/* A call made from the probed modules' own text (glibc's malloc mapping an arena, pthread_create
 * mapping a stack): the allocator's business, not the program's. */
static __always_inline int from_allocator(__u64 sp)
{
	__u64 ret = 0;
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp) != 0)
		return 0;
	__u32 key = 0;
	struct ue_control *c = bpf_map_lookup_elem(&control, &key);
	if (!c)
		return 0;
	for (int i = 0; i < UE_MAX_MODULES; i++) {
		if (ret >= c->lo[i] && ret < c->hi[i])
			return 1;
	}
	return 0;
}

SEC("uprobe")
int on_entry(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) != cfg.tgid)
		return 0;
	__u32 function = bpf_get_attach_cookie(ctx) & 0xff;
	__u64 sp = PT_REGS_SP(ctx);
	struct call *open = bpf_map_lookup_elem(&calls, &pid_tgid);
	if (open && open->active) {
		/* Below the open call's frame: a call it makes. At the same stack pointer: a tail call it makes
		 * (glibc's reallocarray jumps to realloc), which returns where the open call would. */
		if (sp <= open->sp) {
			count(UC_NESTED, 1);
			return 0;
		}
		/* Above the open call's frame: that call returned without its return probe firing. */
		count(UC_RETURN_MISSED, 1);
		open->active = 0;
	}
	if ((function == UE_FN_MMAP || function == UE_FN_MUNMAP || function == UE_FN_MREMAP) && from_allocator(sp))
		return 0;

	struct call c = {.sp = sp, .function = function, .active = 1, .sampled = 1, .sample_left = open ? open->sample_left : 0};
	switch (function) {
	case UE_FN_FREE: {
		__u64 p = PT_REGS_PARM1(ctx);
		if (p && recorded_release(p))
			emit_release(pid_tgid, UE_FREE, function, 0, p, 0);
		return 0;
	}
	case UE_FN_MUNMAP: {
		__u64 addr = PT_REGS_PARM1(ctx), len = PT_REGS_PARM2(ctx);
		if (len > 0 && (addr & (cfg.page_size - 1)) == 0)
			emit_release(pid_tgid, UE_MUNMAP, function, 0, addr, len);
		return 0;
	}
	case UE_FN_MALLOC:
	case UE_FN_VALLOC:
	case UE_FN_PVALLOC:
		c.size = PT_REGS_PARM1(ctx);
		c.sampled = sample(&c, c.size);
		break;
	case UE_FN_CALLOC:
		c.size = PT_REGS_PARM1(ctx) * PT_REGS_PARM2(ctx);
		c.sampled = sample(&c, c.size);
		break;
	case UE_FN_ALIGNED_ALLOC:
	case UE_FN_MEMALIGN:
		c.size = PT_REGS_PARM2(ctx);
		c.sampled = sample(&c, c.size);
		break;
	case UE_FN_POSIX_MEMALIGN:
		c.out = PT_REGS_PARM1(ctx);
		c.size = PT_REGS_PARM3(ctx);
		c.sampled = sample(&c, c.size);
		break;
	case UE_FN_REALLOC:
	case UE_FN_REALLOCARRAY:
		c.old = PT_REGS_PARM1(ctx);
		c.size = function == UE_FN_REALLOC ? PT_REGS_PARM2(ctx) : PT_REGS_PARM2(ctx) * PT_REGS_PARM3(ctx);
		/* Sampling: the new block is decided by its size now; the old one's free is recorded only if it
		 * was, and is pending only if a recorded block follows (the shim's rule). */
		c.sampled = sample(&c, c.size);
		if (c.old && !recorded_release(c.old))
			c.old = 0;
		/* realloc(p, 0) frees p for good; otherwise the free is pending until the call returns. */
		if (c.old) {
			c.pending = c.size != 0 && c.sampled;
			emit_release(pid_tgid, UE_FREE, function, c.pending ? UE_F_PENDING : 0, c.old, 0);
		}
		break;
	case UE_FN_MMAP:
		c.size = PT_REGS_PARM2(ctx);
		c.flags = (PT_REGS_PARM4(ctx) & MAP_ANONYMOUS) ? 0 : UE_F_FILE;
		break;
	case UE_FN_MREMAP: {
		__u64 old_len = PT_REGS_PARM2(ctx);
		c.size = PT_REGS_PARM3(ctx);
		/* old_len == 0 duplicates a shared mapping and DONTUNMAP keeps the old one: nothing is released. */
		if (old_len != 0 && !(PT_REGS_PARM4(ctx) & MREMAP_DONTUNMAP)) {
			c.old = PT_REGS_PARM1(ctx);
			c.pending = 1;
			emit_release(pid_tgid, UE_MUNMAP, function, UE_F_PENDING, c.old, old_len);
		}
		break;
	}
	default:
		return 0;
	}
	if (open) {
		*open = c;
	} else if (bpf_map_update_elem(&calls, &pid_tgid, &c, BPF_ANY) != 0) {
		count(UC_CALLS_FULL, 1);
	}
	return 0;
}

SEC("uretprobe")
int on_return(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) != cfg.tgid)
		return 0;
	struct call *c = bpf_map_lookup_elem(&calls, &pid_tgid);
	/* Not above the open call's entry: the return of a call nested in it, which was left out. */
	if (!c || !c->active || PT_REGS_SP(ctx) <= c->sp)
		return 0;
	c->active = 0;
	__u64 ret = PT_REGS_RC(ctx);
	__u8 function = c->function;
	__u64 address = ret;
	if (function == UE_FN_POSIX_MEMALIGN) {
		address = 0;
		if ((int)ret != 0 || bpf_probe_read_user(&address, sizeof(address), (void *)c->out) != 0)
			address = 0;
	} else if (function == UE_FN_MMAP || function == UE_FN_MREMAP) {
		if (ret == (__u64)-1)
			address = 0;
	}
	if (address == 0) {
		if (c->pending) {
			emit_release(pid_tgid, UE_UNDO, function, 0, c->old, 0);
			if (function != UE_FN_MREMAP)
				note_sampled(c->old); /* the failed realloc's block is still live, and recorded */
		}
		return 0;
	}
	/* Sampled out: nothing to record, no stack to capture. mmap-family calls are never sampled. */
	if (!c->sampled)
		return 0;
	if (function != UE_FN_MMAP && function != UE_FN_MREMAP && !note_sampled(address))
		return 0;
	emit_alloc(ctx, pid_tgid, function, c->flags, address, c->size, c->old);
	return 0;
}

/* The dynamic loader's _dl_debug_state, which it calls before and after every change to the set of
 * loaded objects: the consumer rescans the process's mappings. In launch mode the process also stops
 * here until the allocator probes are attached. */
SEC("uprobe")
int on_loader(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) != cfg.tgid)
		return 0;
	emit_release(pid_tgid, UE_LOADER, 0, 0, 0, 0);
	__u32 key = 0;
	struct ue_control *c = bpf_map_lookup_elem(&control, &key);
	if (c && c->stop_at_loader)
		bpf_send_signal(SIGSTOP);
	return 0;
}

/* A thread that ends inside an open call (it never returns): forget the call, and count it. */
SEC("raw_tracepoint/sched_process_exit")
int on_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) != cfg.tgid)
		return 0;
	struct call *c = bpf_map_lookup_elem(&calls, &pid_tgid);
	if (!c)
		return 0;
	if (c->active)
		count(UC_RETURN_MISSED, 1);
	bpf_map_delete_elem(&calls, &pid_tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
