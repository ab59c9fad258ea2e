import Foundation
import LeakReport
import TestSupport
import XCTest

/// Faults a real app inflicts on itself while traced (issue 12, section 2): signal handlers that
/// allocate, fork/vfork/posix_spawn from threads, libraries coming and going, an app that closes or
/// unmaps its own ring, odd ways to exit. Each runs under `leakcollect` and must print and exit as it
/// does without the tool, and leave a session with its exact leaks.
final class FaultTests: XCTestCase {
    /// Runs `prog` without the tool and under `leakcollect`; asserts both print and exit alike.
    private func collectAsWithout(_ prog: CProgram, _ args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws
        -> Pipeline.Collected
    {
        let bare = try Run.capture([prog.path] + args, timeout: 30)
        let run = try Pipeline.collect(prog, args)
        XCTAssertEqual(run.result.stdout, bare.stdout, "stdout as without the tool", file: file, line: line)
        let expected = bare.signal != 0 ? 128 + bare.signal : bare.status
        XCTAssertEqual(run.result.status, expected, "exit status as without the tool; stderr: \(run.result.stderr)", file: file, line: line)
        return run
    }

    func testAllocationInSignalHandlersOnEveryThread() throws {
        // Each thread takes a timer signal of its own about every 200 us; the handler mallocs and frees while
        // the interrupted thread may be inside the shim's malloc wrapper.
        let prog = try CProgram.build(
            "sighandler_alloc",
            source: """
                #define _GNU_SOURCE
                #include <pthread.h>
                #include <signal.h>
                #include <stdatomic.h>
                #include <stdio.h>
                #include <stdlib.h>
                #include <string.h>
                #include <sys/syscall.h>
                #include <time.h>
                #include <unistd.h>
                static atomic_long handled;
                static void on_timer(int s) {
                    (void)s;
                    /* A size the threads never use: its tcache slot is never empty, so glibc takes no lock here. */
                    char *p = malloc(1000);
                    if (p) p[0] = 1;
                    free(p);
                    atomic_fetch_add(&handled, 1);
                }
                __attribute__((noinline)) void *thread_leak(void) { return malloc(40); } // SH-LEAK
                static void *work(void *arg) {
                    (void)arg;
                    free(malloc(1000));
                    struct sigevent ev;
                    memset(&ev, 0, sizeof ev);
                    ev.sigev_notify = SIGEV_THREAD_ID;
                    ev.sigev_signo = SIGRTMIN;
                    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
                    timer_t t;
                    timer_create(CLOCK_MONOTONIC, &ev, &t);
                    struct itimerspec its = {{0, 200000}, {0, 200000}};
                    timer_settime(t, 0, &its, NULL);
                    for (int i = 0; i < 20000; i++) {
                        char *p = malloc(16 + i % 300);
                        p = realloc(p, 32 + i % 500);
                        free(p);
                        if (i % 100 == 0) thread_leak();
                    }
                    struct itimerspec off = {{0, 0}, {0, 0}};
                    timer_settime(t, 0, &off, NULL);
                    timer_delete(t);
                    return NULL;
                }
                int main(void) {
                    struct sigaction sa;
                    memset(&sa, 0, sizeof sa);
                    sa.sa_handler = on_timer;
                    sa.sa_flags = SA_RESTART;
                    sigaction(SIGRTMIN, &sa, NULL);
                    pthread_t t[4];
                    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, work, NULL);
                    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
                    fprintf(stderr, "handled %ld\\n", atomic_load(&handled));
                    printf("done\\n");
                    return 0;
                }
                """, extraFlags: ["-lrt"])
        let run = try collectAsWithout(prog)
        let handled = run.result.stderr.split(separator: "\n").first { $0.hasPrefix("handled ") }.flatMap { Int($0.dropFirst(8)) } ?? 0
        XCTAssertGreaterThan(handled, 100, "the handlers ran: \(run.result.stderr)")
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "thread_leak", bytes: 4 * 200 * 40, blocks: 4 * 200, program: prog, marker: "SH-LEAK")
        XCTAssertEqual(report.totals.outstandingBlocks, 800, "\(report.stacks.map { "\($0.bytes)/\($0.blocks) \($0.userFrame?.function ?? "?")" })")
    }

    func testForkVforkAndPosixSpawnFromAThreadedApp() throws {
        let prog = try CProgram.build(
            "spawner",
            source: """
                #define _GNU_SOURCE
                #include <pthread.h>
                #include <spawn.h>
                #include <stdatomic.h>
                #include <stdio.h>
                #include <stdlib.h>
                #include <sys/wait.h>
                #include <unistd.h>
                extern char **environ;
                static atomic_int stop;
                __attribute__((noinline)) static void *deep(int n, size_t size) { return n ? deep(n - 1, size) : malloc(size); }
                static void *churn(void *arg) {
                    unsigned seed = (unsigned)(long)arg;
                    while (!atomic_load(&stop)) free(deep(rand_r(&seed) % 30, 16 + rand_r(&seed) % 256));
                    return NULL;
                }
                __attribute__((noinline)) void *parent_leak(int i) { return malloc(123 + i); } // SP-PARENT
                __attribute__((noinline)) void *child_leak(void) { return malloc(4444); }
                static int status_of(pid_t c) { int st = 0; return waitpid(c, &st, 0) == c && WIFEXITED(st) ? WEXITSTATUS(st) : -1; }
                int main(void) {
                    pthread_t t[3];
                    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, (void *)(i + 1));
                    int sum = 0;
                    for (int i = 0; i < 5; i++) {
                        parent_leak(i);
                        pid_t c = fork();
                        if (c == 0) { /* keeps running: allocates, leaks, exits */
                            for (int k = 0; k < 50; k++) free(deep(k % 9, 100 + k));
                            child_leak();
                            printf("child %d\\n", i);
                            fflush(stdout);
                            _exit(i);
                        }
                        sum += status_of(c);
                        c = fork();
                        if (c == 0) { execl("/bin/sh", "sh", "-c", "echo exec; exit 2", (char *)NULL); _exit(99); }
                        sum += status_of(c);
                        c = vfork();
                        if (c == 0) { execl("/bin/sh", "sh", "-c", "exit 3", (char *)NULL); _exit(99); }
                        sum += status_of(c);
                        char *argv[] = {"sh", "-c", "echo spawned; exit 4", NULL};
                        if (posix_spawn(&c, "/bin/sh", NULL, NULL, argv, environ) == 0) sum += status_of(c);
                    }
                    atomic_store(&stop, 1);
                    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
                    printf("sum %d\\n", sum);
                    return sum == (0 + 1 + 2 + 3 + 4) + 5 * (2 + 3 + 4) ? 7 : 1;
                }
                """)
        let run = try collectAsWithout(prog)
        XCTAssertEqual(run.result.status, 7)
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "parent_leak", bytes: (0..<5).reduce(0) { $0 + 123 + UInt64($1) }, blocks: 5, program: prog, marker: "SP-PARENT")
        XCTAssertNil(report.stack(function: "child_leak"), "a child's leak in the parent's session")
        XCTAssertNil(report.stack(function: "deep"), "no phantom blocks from the churn")
    }

    func testDlopenAndDlcloseInALoopWhileThreadsUnwindThroughTheLibrary() throws {
        let lib = try CProgram.build(
            "churnlib",
            source: """
                #include <stdlib.h>
                __attribute__((noinline)) void *plugin_leak(void) { return malloc(77); } // DL-LEAK
                __attribute__((noinline)) static void *inner(int n, size_t s) { return n ? inner(n - 1, s) : malloc(s); }
                void plugin_work(int i) {
                    for (int k = 0; k < 20; k++) free(inner(k % 6, 10 + k * 13));
                    if (i % 10 == 0) plugin_leak();
                }
                """, sharedObject: true)
        let prog = try CProgram.build(
            "dlchurn",
            source: """
                #include <dlfcn.h>
                #include <pthread.h>
                #include <stdatomic.h>
                #include <stdio.h>
                #include <stdlib.h>
                static const char *path;
                static atomic_int stop, failures;
                static void *cycle(void *arg) {
                    (void)arg;
                    for (int i = 0; i < 100; i++) {
                        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                        void (*f)(int) = h ? (void (*)(int))dlsym(h, "plugin_work") : NULL;
                        if (!f) { atomic_fetch_add(&failures, 1); continue; }
                        f(i);
                        dlclose(h);
                    }
                    return NULL;
                }
                static void *churn(void *arg) {
                    (void)arg;
                    while (!atomic_load(&stop)) free(malloc(64));
                    return NULL;
                }
                int main(int argc, char **argv) {
                    if (argc < 2) return 2;
                    path = argv[1];
                    pthread_t c, t[3];
                    pthread_create(&c, NULL, churn, NULL);
                    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, cycle, NULL);
                    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
                    atomic_store(&stop, 1);
                    pthread_join(c, NULL);
                    printf("failures %d\\n", atomic_load(&failures));
                    return 0;
                }
                """, extraFlags: ["-ldl"])
        let run = try collectAsWithout(prog, [lib.path])
        XCTAssertEqual(run.result.stdout, "failures 0\n")
        let report = try Pipeline.top(run.session)
        // Each load may map the library at another address: the same source stack can come as several stacks.
        let leaks = report.stacks.filter { $0.kind == "heap" && $0.userFrame?.function == "plugin_leak" }
        XCTAssertEqual(leaks.reduce(0) { $0 + $1.bytes }, 30 * 77, "bytes from plugin_leak")
        XCTAssertEqual(leaks.reduce(0) { $0 + $1.blocks }, 30, "blocks from plugin_leak")
        for s in leaks {
            XCTAssertEqual(s.userFrame?.line, try? lib.line(of: "DL-LEAK"))
            XCTAssertEqual(s.frames.dropFirst().first?.function, "plugin_work")
        }
        XCTAssertEqual(report.totals.outstandingBlocks, 30, "\(report.stacks.map { "\($0.bytes)/\($0.blocks) \($0.userFrame?.function ?? "?")" })")
    }

    /// A library loaded, leaked from and unloaded before the collector reads its module record (here:
    /// the collector is stopped meanwhile; in CI, a busy machine) is no longer mapped when its file is
    /// opened: its frames are still named, from the path the process could read itself. Before, they
    /// stayed `?` in the library (the flaky failure of the dlopen churn test above under load).
    func testALibraryUnloadedBeforeItsRecordIsReadIsStillSymbolized() throws {
        let lib = try CProgram.build(
            "latelib",
            source: """
                #include <stdlib.h>
                __attribute__((noinline)) void *late_leak(void) { return malloc(91); } // LATE-LEAK
                void late_work(void) { late_leak(); }
                """, sharedObject: true)
        let prog = try CProgram.build(
            "lateunload",
            source: """
                #include <dlfcn.h>
                #include <stdio.h>
                int main(int argc, char **argv) {
                    char line[16];
                    if (argc < 2) return 2;
                    printf("ready\\n"); fflush(stdout);
                    if (!fgets(line, sizeof line, stdin)) return 3;
                    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
                    void (*f)(void) = h ? (void (*)(void))dlsym(h, "late_work") : NULL;
                    if (!f) return 4;
                    f();
                    dlclose(h);
                    printf("unloaded\\n"); fflush(stdout);
                    if (!fgets(line, sizeof line, stdin)) return 5;
                    return 0;
                }
                """, extraFlags: ["-ldl"])
        let session = Pipeline.sessionPath("lateunload")
        let collector = try RunningProcess([try BuildProducts.leakcollect, "-o", session, "--", prog.path, lib.path])
        try collector.waitFor("ready")
        usleep(300_000)  // the collector is reading the ring (what was there before is read)
        collector.signal(SIGSTOP)
        collector.send("go")
        try collector.waitFor("unloaded")
        collector.signal(SIGCONT)
        usleep(1_000_000)  // the records are read while the program still lives, without the library mapped
        collector.send("exit")
        let status = try collector.wait(timeout: 60)
        XCTAssertEqual(status.status, 0, collector.stderr)
        let report = try Pipeline.top(session)
        assertLeak(report, function: "late_leak", bytes: 91, blocks: 1, program: lib, marker: "LATE-LEAK")
        XCTAssertEqual(report.stack(function: "late_leak")?.frames.dropFirst().first?.function, "late_work")
    }

    func testAnAppThatClosesEveryDescriptorIsStillTracedExactly() throws {
        let prog = try CProgram.build(
            "closeall",
            source: """
                #define _GNU_SOURCE
                #include <stdio.h>
                #include <stdlib.h>
                #include <sys/syscall.h>
                #include <unistd.h>
                __attribute__((noinline)) void *before_close(int i) { return malloc(500 + i); } // CL-BEFORE
                __attribute__((noinline)) void *after_close(int i) { return malloc(600 + i); } // CL-AFTER
                int main(void) {
                    for (int i = 0; i < 10; i++) before_close(i);
                    syscall(SYS_close_range, 3u, ~0u, 0u);
                    for (int i = 0; i < 10000; i++) free(malloc(32 + i % 100));
                    for (int i = 0; i < 10; i++) after_close(i);
                    printf("closed\\n");
                    return 0;
                }
                """)
        let run = try collectAsWithout(prog)
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "before_close", bytes: 5045, blocks: 10, program: prog, marker: "CL-BEFORE")
        assertLeak(report, function: "after_close", bytes: 6045, blocks: 10, program: prog, marker: "CL-AFTER")
    }

    func testAnAppThatUnmapsItsRingGetsOneLineAndKeepsWhatWasCollected() throws {
        // Sandboxes and test harnesses unmap what they did not map. The shim must not fault, and the
        // collector says once that tracking stopped there.
        let prog = try CProgram.build(
            "unmapring",
            source: """
                #define _GNU_SOURCE
                #include <stdio.h>
                #include <stdlib.h>
                #include <string.h>
                #include <sys/mman.h>
                __attribute__((noinline)) void *before_unmap(int i) { return malloc(700 + i); } // UM-BEFORE
                static int unmap_named(const char *name) {
                    FILE *f = fopen("/proc/self/maps", "r");
                    if (!f) return 0;
                    unsigned long lo[16], hi[16];
                    int n = 0;
                    char line[512];
                    while (n < 16 && fgets(line, sizeof line, f))
                        if (strstr(line, name) && sscanf(line, "%lx-%lx", &lo[n], &hi[n]) == 2) n++;
                    fclose(f);
                    for (int i = 0; i < n; i++) munmap((void *)lo[i], hi[i] - lo[i]);
                    return n;
                }
                int main(void) {
                    for (int i = 0; i < 10; i++) before_unmap(i);
                    int n = unmap_named("leakshim-ring");
                    for (int i = 0; i < 20000; i++) free(malloc(32 + i % 100));
                    for (int i = 0; i < 5; i++) malloc(10);
                    printf("done\\n");
                    return n > 0 ? 0 : 0;
                }
                """)
        let run = try collectAsWithout(prog)
        let lines = run.result.stderr.split(separator: "\n").filter { $0.contains("unmapped its ring") }
        XCTAssertEqual(lines.count, 1, run.result.stderr)
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "before_unmap", bytes: (0..<10).reduce(0) { $0 + 700 + UInt64($1) }, blocks: 10, program: prog, marker: "UM-BEFORE")
    }

    static let exits = """
        #define _GNU_SOURCE
        #include <pthread.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        __attribute__((noinline)) void *early_leak(int i) { return malloc(300 + i); } // EX-EARLY
        __attribute__((noinline)) void *thread_leak(int i) { return malloc(900 + i); } // EX-THREAD
        static const char *mode;
        static void *worker(void *arg) {
            (void)arg;
            for (int i = 0; i < 7; i++) thread_leak(i);
            for (int i = 0; i < 5000; i++) free(malloc(48));
            if (!strcmp(mode, "thread-exit")) { fflush(stdout); exit(5); }
            return NULL;
        }
        int main(int argc, char **argv) {
            mode = argc > 1 ? argv[1] : "";
            for (int i = 0; i < 20; i++) early_leak(i);
            printf("mode %s\\n", mode);
            fflush(stdout);
            if (!strcmp(mode, "_exit")) _exit(6);
            if (!strcmp(mode, "abort")) abort();
            pthread_t t;
            pthread_create(&t, NULL, worker, NULL);
            if (!strcmp(mode, "main-pthread-exit")) pthread_exit(NULL);
            pthread_join(t, NULL);
            return 1;
        }
        """

    private func assertExitKeepsEverything(_ mode: String, threadLeaks: Bool, end: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let prog = try CProgram.build("exits", source: Self.exits)
        let run = try collectAsWithout(prog, [mode], file: file, line: line)
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "early_leak", bytes: (0..<20).reduce(0) { $0 + 300 + UInt64($1) }, blocks: 20, program: prog, marker: "EX-EARLY", file: file, line: line)
        if threadLeaks {
            assertLeak(report, function: "thread_leak", bytes: (0..<7).reduce(0) { $0 + 900 + UInt64($1) }, blocks: 7, program: prog, marker: "EX-THREAD", file: file, line: line)
        }
        XCTAssertEqual(report.session.end, end, file: file, line: line)
    }

    func testPthreadExitFromMainKeepsWhatTheOtherThreadLeaks() throws {
        try assertExitKeepsEverything("main-pthread-exit", threadLeaks: true, end: "exited with status 0")
    }

    func testExitFromAThreadKeepsEverything() throws {
        try assertExitKeepsEverything("thread-exit", threadLeaks: true, end: "exited with status 5")
    }

    func testUnderscoreExitKeepsEverything() throws {
        try assertExitKeepsEverything("_exit", threadLeaks: false, end: "exited with status 6")
    }

    func testAbortKeepsEverything() throws {
        try assertExitKeepsEverything("abort", threadLeaks: false, end: "killed by signal 6 (SIGABRT)")
    }
    func testAfterItsCollectorIsKilledTheAppAllocatesAtThePaceOfAnUntracedShimAndStopsProbing() throws {
        let prog = try CProgram.build(
            "pace",
            source: """
                #include <stdio.h>
                #include <stdlib.h>
                #include <time.h>
                #include <unistd.h>
                __attribute__((noinline)) static void *deep(int n, size_t s) { return n ? deep(n - 1, s) : malloc(s); }
                static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec / 1e9; }
                int main(int argc, char **argv) {
                    double secs = argc > 1 ? atof(argv[1]) : 1, start = now(), w = start;
                    long n = 0;
                    printf("pid %d\\n", getpid());
                    fflush(stdout);
                    for (;;) {
                        for (int k = 0; k < 500; k++) free(deep(k % 5, 64 + k % 64));
                        n += 500;
                        double t = now();
                        if (t - w >= 0.1) {
                            printf("rate %.3f %.0f\\n", t - start, n / (t - w));
                            fflush(stdout);
                            n = 0;
                            w = t;
                        }
                        if (t - start >= secs) return 0;
                    }
                }
                """)
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        // The same shim with no collector, run alongside so both see the same load on the machine.
        let untraced = try RunningProcess([prog.path, "4.5"], environment: env)
        defer { untraced.signal(SIGKILL) }
        let collector = try RunningProcess([try BuildProducts.leakcollect, "-o", Pipeline.sessionPath("pace"), "--", prog.path, "4.5"])
        try Self.waitForRate(collector, at: 1.0)
        collector.signal(SIGKILL)
        // Well past the heartbeat's second: the shim has seen its reader is gone.
        try Self.waitForRate(collector, at: 3.0)
        let pid = try XCTUnwrap(collector.stdout.split(separator: "\n").first { $0.hasPrefix("pid ") }.flatMap { Int32($0.dropFirst(4)) })
        let before = try ringWords(pid: pid)
        usleep(400_000)
        let after = try ringWords(pid: pid)
        XCTAssertEqual(before.cursor, after.cursor, "the app keeps writing records to a ring nobody reads")
        XCTAssertEqual(before.lost, after.lost, "the app keeps probing a ring nobody reads")
        XCTAssertEqual(try untraced.wait().status, 0)
        // The pipe closes when the app, which holds it too, is done.
        XCTAssertEqual(try collector.wait().signal, SIGKILL)
        let deadline = Date().addingTimeInterval(20)
        while kill(pid, 0) == 0 && Date() < deadline { usleep(20_000) }
        let traced = Self.rates(collector.stdout, from: 3.0), bare = Self.rates(untraced.stdout, from: 3.0)
        XCTAssertFalse(traced.isEmpty || bare.isEmpty, "\(collector.stdout)")
        let t = Self.median(traced), b = Self.median(bare)
        print("allocations/s after the kill \(t), untraced shim \(b)")
        XCTAssertGreaterThan(t, 0.6 * b, "after the kill \(traced), untraced \(bare)")
    }

    /// The ring's cursor and `lost_events` (leakring.h offsets 64 and 256), read from the memfd of `pid`.
    private func ringWords(pid: Int32) throws -> (cursor: UInt64, lost: UInt64) {
        let dir = "/proc/\(pid)/fd"
        for fd in try FileManager.default.contentsOfDirectory(atPath: dir) {
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(fd)"), link.contains("leakshim-ring") else { continue }
            let h = open("\(dir)/\(fd)", O_RDONLY)
            guard h >= 0 else { throw TestSupportError("cannot open \(dir)/\(fd): errno \(errno)") }
            defer { close(h) }
            var cursor: UInt64 = 0, lost: UInt64 = 0
            guard pread(h, &cursor, 8, 64) == 8, pread(h, &lost, 8, 256) == 8 else { throw TestSupportError("short read of the ring header") }
            return (cursor, lost)
        }
        throw TestSupportError("no ring descriptor in \(dir)")
    }

    private static func rates(_ out: String, from: Double) -> [Double] {
        out.split(separator: "\n").compactMap { l -> Double? in
            let f = l.split(separator: " ")
            guard f.count == 3, f[0] == "rate", let t = Double(f[1]), t >= from else { return nil }
            return Double(f[2])
        }
    }

    /// Waits until the program has reported a rate at `at` seconds or later.
    private static func waitForRate(_ p: RunningProcess, at: Double) throws {
        let deadline = Date().addingTimeInterval(20)
        while rates(p.stdout, from: at).isEmpty {
            guard Date() < deadline else { throw TestSupportError("no rate at \(at) s; stdout: \(p.stdout.suffix(300)) stderr: \(p.stderr)") }
            usleep(20_000)
        }
    }

    private static func median(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.sorted()[v.count / 2] }
}
