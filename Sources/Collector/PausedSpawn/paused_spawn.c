#define _GNU_SOURCE
#include "paused_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

int leak_spawn_paused(const char *path, char *const argv[], char *const envp[], pid_t *pid, int *release) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return errno;
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return e;
    }
    if (child == 0) {
        /* Only async-signal-safe calls from here on: the parent is multithreaded. */
        close(fds[1]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* the program starts with no signal blocked, as posix_spawn's would */
        char go;
        ssize_t n;
        do n = read(fds[0], &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) _exit(127); /* the collector gave up (or died) before releasing us */
        close(fds[0]);
        execve(path, argv, envp);
        _exit(127);
    }
    close(fds[0]);
    *pid = child;
    *release = fds[1];
    return 0;
}

int leak_spawn_release(int release) {
    char go = 1;
    ssize_t n;
    do n = write(release, &go, 1);
    while (n < 0 && errno == EINTR);
    int e = n == 1 ? 0 : errno;
    close(release);
    return e;
}
