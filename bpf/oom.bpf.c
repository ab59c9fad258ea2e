/* OOM kills with their context: the victim's memory at the moment it was chosen, its memory cgroup and
 * that cgroup's limit, the task that ran the OOM killer, and the OOM reaper's progress. */
#include "common.bpf.h"

/* One mm counter in pages. A macro, not a function: `member` must be a literal so the CO-RE relocation
 * covers the array index (a runtime index would be scaled by the local, not the kernel's, element size). */
#define RSS_PAGES(mm, member)                                                                   \
	({                                                                                     \
		long __v;                                                                      \
		if (bpf_core_type_exists(struct mm_rss_stat))                                 \
			__v = BPF_CORE_READ((struct mm_struct___old *)(mm), rss_stat.count[member].counter); \
		else /* percpu_counter's shared count, as the kernel's own OOM report reads it */ \
			__v = BPF_CORE_READ(mm, rss_stat[member].count);                      \
		(__u64)(__v > 0 ? __v : 0);                                                    \
	})

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	struct kernfs_node___old *old = (void *)kn;
	return BPF_CORE_READ(old, parent);
}

static __always_inline void read_memcg(struct task_struct *task, struct ke_oom *e)
{
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return;
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct css_set *cgroups = BPF_CORE_READ(task, cgroups);
	struct cgroup_subsys_state *css = NULL;
	if (!cgroups || bpf_core_read(&css, sizeof(css), &cgroups->subsys[id]) || !css)
		return;
	struct mem_cgroup *memcg = (void *)css - bpf_core_field_offset(struct mem_cgroup, css);
	e->memcg_max_pages = BPF_CORE_READ(memcg, memory.max);
	e->memcg_usage_pages = BPF_CORE_READ(memcg, memory.usage.counter);
	struct kernfs_node *kn = BPF_CORE_READ(css, cgroup, kn);
	__u32 depth = 0;
	for (int i = 0; i < KE_MEMCG_DEPTH && kn; i++) {
		const char *name = BPF_CORE_READ(kn, name);
		if (bpf_probe_read_kernel_str(e->memcg[i], KE_MEMCG_NAME_LEN, name) < 0)
			e->memcg[i][0] = 0;
		depth = i + 1;
		kn = kn_parent(kn);
	}
	e->memcg_depth = depth;
	e->flags |= KE_OOM_HAS_MEMCG;
}

/* oom:mark_victim. Since 6.8 (task, uid), and the event records the victim's memory; before, only
 * the pid. */
SEC("raw_tp")
int mark_victim(struct bpf_raw_tracepoint_args *ctx)
{
	struct ke_oom *e = reserve_other(sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->h, KE_OOM_VICTIM);
	bpf_get_current_comm(e->trigger_comm, sizeof(e->trigger_comm));
	if (bpf_core_field_exists(struct trace_event_raw_mark_victim, total_vm)) {
		struct task_struct *task = (void *)ctx->args[0];
		e->flags |= KE_OOM_HAS_TASK;
		e->victim_tid = BPF_CORE_READ(task, pid);
		e->victim_tgid = BPF_CORE_READ(task, tgid);
		e->uid = (__u32)ctx->args[1];
		bpf_core_read_str(e->victim_comm, sizeof(e->victim_comm), &task->comm);
		e->oom_score_adj = BPF_CORE_READ(task, signal, oom_score_adj);
		struct mm_struct *mm = BPF_CORE_READ(task, mm);
		if (mm) {
			e->total_vm_pages = BPF_CORE_READ(mm, total_vm);
			e->anon_rss_pages = RSS_PAGES(mm, MM_ANONPAGES);
			e->file_rss_pages = RSS_PAGES(mm, MM_FILEPAGES);
			e->shmem_rss_pages = RSS_PAGES(mm, MM_SHMEMPAGES);
			long pt = BPF_CORE_READ(mm, pgtables_bytes.counter);
			e->pgtables_bytes = pt > 0 ? pt : 0;
		}
		read_memcg(task, e);
	} else {
		e->victim_tid = (__u32)ctx->args[0];
		e->victim_tgid = e->victim_tid;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int reaper(__u32 pid, __u32 step)
{
	struct ke_reaper *r = reserve_other(sizeof(*r));
	if (!r)
		return 0;
	fill_header(&r->h, KE_OOM_REAPER);
	r->pid = pid;
	r->step = step;
	bpf_ringbuf_submit(r, SUBMIT_FLAGS);
	return 0;
}

/* oom:wake_reaper, start_task_reaping, finish_task_reaping, skip_task_reaping: pid. */
#define REAPER_PROGRAM(name, step)                                  \
	SEC("raw_tp")                                                \
	int name(struct bpf_raw_tracepoint_args *ctx)                \
	{                                                            \
		return reaper(ctx->args[0], step);                    \
	}

REAPER_PROGRAM(wake_reaper, KE_REAPER_WAKE)
REAPER_PROGRAM(start_task_reaping, KE_REAPER_START)
REAPER_PROGRAM(finish_task_reaping, KE_REAPER_FINISH)
REAPER_PROGRAM(skip_task_reaping, KE_REAPER_SKIP)

/* oom:reclaim_retry_zone and oom:compact_retry: the page allocator retrying before it gives up. */
SEC("raw_tp")
int reclaim_retry_zone(struct bpf_raw_tracepoint_args *ctx)
{
	count(KC_RECLAIM_RETRY_ZONE, 1);
	return 0;
}

SEC("raw_tp")
int compact_retry(struct bpf_raw_tracepoint_args *ctx)
{
	count(KC_COMPACT_RETRY, 1);
	return 0;
}
