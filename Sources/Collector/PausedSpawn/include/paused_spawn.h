/* A child that is forked now and execs only when its parent says so, so that the parent can set up
 * tracing of the exact process (its pid) before the program's first instruction runs. */
#ifndef LEAK_PAUSED_SPAWN_H
#define LEAK_PAUSED_SPAWN_H

#include <sys/types.h>

/* Forks a child that waits for one byte on a pipe, then execve(path, argv, envp). Returns 0 and sets
 * *pid and *release (the pipe's write end, close-on-exec), or an errno value. If the release descriptor
 * is closed without a byte, the child exits with status 127 without running anything; an exec that
 * fails exits 127 too. */
int leak_spawn_paused(const char *path, char *const argv[], char *const envp[], pid_t *pid, int *release);

/* Lets the child exec, and closes the descriptor. 0 or an errno value. */
int leak_spawn_release(int release);

#endif
