#define _GNU_SOURCE
#include "uprobe_multi_link.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The link_create part of union bpf_attr as Linux 6.6+ lays it out for uprobe_multi (the build
 * machine's <linux/bpf.h> may predate it). */
struct uprobe_multi_attr {
    uint32_t prog_fd;
    uint32_t target_fd;
    uint32_t attach_type;
    uint32_t flags;
    uint64_t path;
    uint64_t offsets;
    uint64_t ref_ctr_offsets;
    uint64_t cookies;
    uint32_t cnt;
    uint32_t multi_flags;
    uint32_t pid;
    uint32_t pad;
    uint8_t rest[64]; /* the rest of union bpf_attr must be zero */
};

enum { BPF_LINK_CREATE_CMD = 28, UPROBE_MULTI_RETURN = 1 };

int leak_uprobe_multi_attach(int prog_fd, const char *path, const uint64_t *offsets, const uint64_t *cookies, uint32_t count,
                             pid_t pid, int retprobe) {
    struct uprobe_multi_attr a;
    memset(&a, 0, sizeof a);
    a.prog_fd = (uint32_t)prog_fd;
    a.attach_type = LEAK_BPF_TRACE_UPROBE_MULTI;
    a.path = (uint64_t)(uintptr_t)path;
    a.offsets = (uint64_t)(uintptr_t)offsets;
    a.cookies = (uint64_t)(uintptr_t)cookies;
    a.cnt = count;
    a.multi_flags = retprobe ? UPROBE_MULTI_RETURN : 0;
    a.pid = (uint32_t)pid;
    long fd = syscall(SYS_bpf, BPF_LINK_CREATE_CMD, &a, sizeof a);
    return fd < 0 ? -errno : (int)fd;
}
