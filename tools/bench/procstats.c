/* procstats.c: preloaded (LD_PRELOAD) into every process of a benchmark run, so the benchmark can tell
 * the traced program's CPU time and peak RSS from its tool's. At exit each process appends one line,
 *   pid <pid> exe <path> cpu_us <user+system> maxrss_kb <peak RSS>
 * to the file named by BENCH_PROCSTATS (one write on an O_APPEND descriptor, so lines never mix).
 * Tools that spawn helpers (heaptrack's interpreter, the shell scripts around it) report too. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* VmHWM: the peak RSS of this program image (ru_maxrss would include the forking parent's, from
 * before exec). */
static long peak_rss_kb(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = strstr(buf, "VmHWM:");
    return p ? atol(p + 6) : 0;
}

__attribute__((destructor)) static void report(void) {
    const char *out = getenv("BENCH_PROCSTATS");
    if (!out || !*out) return;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    long long cpu = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    char line[4300];
    int len = snprintf(line, sizeof line, "pid %d exe %s cpu_us %lld maxrss_kb %ld\n", (int)getpid(), exe, cpu, peak_rss_kb());
    int fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (len > 0) (void)!write(fd, line, (size_t)len);
    close(fd);
}
