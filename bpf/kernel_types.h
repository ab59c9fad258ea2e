/* The few kernel types the BPF programs read, declared by hand with preserve_access_index.
 *
 * Why not a vmlinux.h generated at build time: that would need bpftool and /sys/kernel/btf/vmlinux on
 * the machine that builds, tying the build to the build host's kernel (and failing in containers or on
 * builders without BTF). Declaring only what we touch keeps the build host-independent; libbpf relocates
 * every field access against the running kernel's BTF when the programs load (CO-RE), so member order,
 * offsets and the declared array sizes here do not matter, only names and kinds.
 *
 * Layouts that changed across kernel versions are declared twice, the older one with a ___old flavor
 * suffix, and the programs pick one with bpf_core_field_exists / bpf_core_type_exists, never with a
 * kernel version number.
 */
#ifndef LEAK_KERNEL_TYPES_H
#define LEAK_KERNEL_TYPES_H

#include <linux/types.h>

#define __core __attribute__((preserve_access_index))

typedef _Bool bool;
#define true 1
#define false 0
typedef __u32 uid_t;

typedef struct {
	long counter;
} __core atomic_long_t;

/* kmem:kmem_cache_alloc passes the cache (6.1+); its object size is what the allocation took. */
struct kmem_cache {
	unsigned int size;
} __core;

/* Existence probes only: these event classes appeared in the same commits that changed the raw
 * tracepoint arguments, so their presence tells which argument layout the kernel passes. */
struct trace_event_raw_kmem_cache_alloc {
	int ent;
} __core;

struct trace_event_raw_mark_victim {
	unsigned long total_vm;
} __core;

struct trace_event_raw_percpu_alloc_percpu {
	unsigned long call_site;
	__u64 bytes_alloc;
} __core;

/* mm->rss_stat: percpu counters since 6.2, an atomic array before. */
struct percpu_counter {
	__s64 count;
} __core;

struct mm_rss_stat {
	atomic_long_t count[4];
} __core;

struct mm_struct {
	unsigned long total_vm;
	atomic_long_t pgtables_bytes;
	struct percpu_counter rss_stat[4];
} __core;

struct mm_struct___old {
	struct mm_rss_stat rss_stat;
} __core;

/* include/linux/mm_types_task.h: an anonymous enum (no CO-RE relocation possible); stable since 4.x. */
#define MM_FILEPAGES 0
#define MM_ANONPAGES 1
#define MM_SHMEMPAGES 3

struct signal_struct {
	short oom_score_adj;
} __core;

/* The parent link was renamed __parent in 6.15 when it became RCU-protected. */
struct kernfs_node {
	const char *name;
	struct kernfs_node *__parent;
} __core;

struct kernfs_node___old {
	struct kernfs_node *parent;
} __core;

struct cgroup {
	struct kernfs_node *kn;
} __core;

struct cgroup_subsys_state {
	struct cgroup *cgroup;
} __core;

struct css_set {
	struct cgroup_subsys_state *subsys[1];
} __core;

enum cgroup_subsys_id {
	memory_cgrp_id = 0,
};

struct page_counter {
	atomic_long_t usage;
	unsigned long max;
} __core;

struct mem_cgroup {
	struct cgroup_subsys_state css;
	struct page_counter memory;
} __core;

struct task_struct {
	int pid;
	int tgid;
	char comm[16];
	struct mm_struct *mm;
	struct signal_struct *signal;
	struct css_set *cgroups;
} __core;

struct shrinker {
	unsigned long (*scan_objects)(struct shrinker *, void *);
	const char *name; /* CONFIG_SHRINKER_DEBUG only */
} __core;

#endif
