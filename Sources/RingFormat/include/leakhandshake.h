/*
 * leakhandshake.h: how the shim hands a new ring to the collector that launched the program, the one
 * definition both sides import (the ring itself is leakring.h).
 *
 * leakcollect listens on a SOCK_SEQPACKET socket in the abstract namespace and puts its name in the
 * launched program's environment (LR_HS_ENV). A shim that is to be followed connects to it when it
 * creates a ring and sends one lr_hello with the ring's memfd attached (SCM_RIGHTS), then closes the
 * connection. Which rings are followed:
 *   - a program image (LR_HS_IMAGE: the first one, and every image after an exec) whose parent is the
 *     collector (LEAKSHIM_COLLECTOR_PID == getppid()): the launched process, through every exec;
 *   - with LR_HS_FOLLOW_ENV=1, also every image and every fork child of its descendants.
 * Only a shim whose hello was delivered marks its ring LR_FLAG_EXPECT_COLLECTOR and waits (bounded by
 * LR_EXPECT_GRACE_NS) for the collector to claim it; one that cannot connect (no collector any more,
 * another network namespace, a full backlog) runs untracked at once and never waits. So an exec never
 * stalls on a collector that is not coming, and a child of an unfollowed tree never waits at all.
 * The collector trusts nothing in the hello: it takes the sender's pid and uid from SO_PEERCRED, and
 * checks the ring like any other (sealed memfd, header, sizes). Passing the descriptor means the ring
 * outlives a process that exits before the collector read it.
 * Every function here is a thin wrapper over system calls: no allocation, safe inside the allocator.
 */
#ifndef LEAKHANDSHAKE_H
#define LEAKHANDSHAKE_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define LR_HS_ENV "LEAKSHIM_COLLECTOR"               /* the collector's socket name, without the leading NUL */
#define LR_HS_FOLLOW_ENV "LEAKSHIM_FOLLOW_CHILDREN"  /* "1": follow every descendant, forks and execs */
#define LR_HS_MAGIC 0x4f4c4548u                      /* "HELO" read as a little-endian u32 */
#define LR_HS_VERSION 1u
#define LR_HS_MAX_NAME 100u                          /* sun_path is 108 bytes; the first is the NUL */

#ifndef SO_PEERCRED
#define SO_PEERCRED 17
#endif

/* lr_hello.kind */
enum lr_hs_kind {
    LR_HS_IMAGE = 1, /* a program image started (the launched one, or one after an exec) */
    LR_HS_FORK = 2,  /* a fork child, which continues its parent's image */
};

typedef struct lr_hello {
    uint32_t magic;
    uint16_t version;
    uint16_t kind;  /* enum lr_hs_kind */
    int32_t pid;    /* as the shim sees them (its pid namespace); the collector trusts SO_PEERCRED instead */
    int32_t ppid;
} lr_hello;
_Static_assert(sizeof(lr_hello) == 16, "hello message");

/* The SO_PEERCRED answer (struct ucred, spelled out: Swift does not see it without _GNU_SOURCE). */
typedef struct lr_peer {
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
} lr_peer;

static inline socklen_t lr_hs_address(const char *name, struct sockaddr_un *a) {
    size_t n = strlen(name);
    if (n == 0 || n > LR_HS_MAX_NAME) return 0;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path + 1, name, n); /* sun_path[0] == 0: the abstract namespace, no file to clean up */
    return (socklen_t)(__builtin_offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* Shim: a connected socket, or -1 when no collector listens there (never blocks). */
static inline int lr_hs_connect(const char *name) {
    struct sockaddr_un a;
    socklen_t len = lr_hs_address(name, &a);
    if (len == 0) return -1;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return -1;
    if (connect(s, (struct sockaddr *)&a, len) != 0) { /* a full backlog is EAGAIN: untracked, not stuck */
        close(s);
        return -1;
    }
    return s;
}

/* Shim: sends the hello with the ring's descriptor; 0 when it was delivered. */
static inline int lr_hs_send(int sock, const lr_hello *h, int ring_fd) {
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {(void *)h, sizeof *h};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.buf;
    m.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &ring_fd, sizeof(int));
    return sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof *h ? 0 : -1;
}

/* Collector: a listening socket (non-blocking, close-on-exec), or -1 with errno. */
static inline int lr_hs_listen(const char *name) {
    struct sockaddr_un a;
    socklen_t len = lr_hs_address(name, &a);
    if (len == 0) return -1;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return -1;
    if (bind(s, (struct sockaddr *)&a, len) != 0 || listen(s, SOMAXCONN) != 0) {
        close(s);
        return -1;
    }
    return s;
}

/* Collector: the next pending connection (non-blocking, close-on-exec), or -1 (EAGAIN when none). */
static inline int lr_hs_accept(int listener) {
    return (int)syscall(SYS_accept4, listener, (void *)0, (void *)0, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

/* Collector: reads one hello from a connection. Returns 1 with the hello, the passed descriptor (-1 if
 * none came) and the sender's credentials; 0 when nothing arrived yet; -1 when the connection is bad
 * (closed, a message of another size, or an error). Descriptors beyond the first are closed. */
static inline int lr_hs_receive(int conn, lr_hello *h, int *fd, lr_peer *peer) {
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {h, sizeof *h};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.buf;
    m.msg_controllen = sizeof control.buf;
    *fd = -1;
    ssize_t n = recvmsg(conn, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*fd < 0) *fd = got; else close(got);
        }
    }
    socklen_t len = sizeof *peer;
    int bad = n != (ssize_t)sizeof *h || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
              getsockopt(conn, SOL_SOCKET, SO_PEERCRED, peer, &len) != 0 || len != sizeof *peer;
    if (bad && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return bad ? -1 : 1;
}

/* Collector: a descriptor that becomes readable when the process exits (pidfd), or -1 (old kernels). */
static inline int lr_pidfd_open(int32_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    return (int)syscall(434, pid, 0);
#endif
}

/* 1 when fd is readable now (a pidfd: the process has exited), 0 otherwise. Never blocks. */
static inline int lr_fd_readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) ? 1 : 0;
}

#endif
