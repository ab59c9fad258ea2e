/* One BPF link for many uprobes (BPF_TRACE_UPROBE_MULTI, Linux 6.6+), which this build's libbpf (1.1)
 * does not wrap. Detaching a link waits for an RCU grace period; one link for two dozen probes waits
 * once instead of two dozen times. */
#ifndef LEAK_UPROBE_MULTI_LINK_H
#define LEAK_UPROBE_MULTI_LINK_H

#include <stdint.h>
#include <sys/types.h>

/* The attach type a program must be loaded with to be attached this way. */
#define LEAK_BPF_TRACE_UPROBE_MULTI 48

/* Attaches prog_fd to `count` offsets of the file at `path`, each with its cookie, in process `pid`;
 * `retprobe` attaches at the functions' returns. Returns the link's descriptor, or -errno. */
int leak_uprobe_multi_attach(int prog_fd, const char *path, const uint64_t *offsets, const uint64_t *cookies, uint32_t count,
                             pid_t pid, int retprobe);

#endif
