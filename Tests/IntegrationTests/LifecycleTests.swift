import Foundation
import LeakReport
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// Programs with no leak, programs that crash, libraries that come and go, attach and detach.
final class LifecycleTests: XCTestCase {
    func testAProgramWithoutLeaksReportsZero() throws {
        let prog = try CProgram.build(
            "no_leak",
            source: """
                #include <pthread.h>
                #include <stdlib.h>
                #include <string.h>
                #include <sys/mman.h>
                static void *work(void *arg) {
                    for (int i = 0; i < 5000; i++) {
                        char *p = malloc(1 + i % 700);
                        p = realloc(p, 1 + i % 1300);
                        free(p);
                    }
                    return arg;
                }
                int main(void) {
                    pthread_t t[4];
                    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, work, 0);
                    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
                    char *s = strdup("no leak here");
                    free(s);
                    munmap(mmap(0, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 1 << 20);
                    return 0;
                }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        XCTAssertEqual(report.totals.outstandingBytes, 0, "\(report.stacks.map { "\($0.bytes) \($0.frames.compactMap(\.function))" })")
        XCTAssertEqual(report.totals.outstandingBlocks, 0)
        XCTAssertEqual(report.totals.lostEvents, 0)
        XCTAssertEqual(report.session.end, "exited with status 0")
        XCTAssertTrue(try Pipeline.text(run.session).contains("No outstanding allocations.\n"))
        // The summary leakcollect prints at exit says where the session went.
        XCTAssertTrue(run.result.stderr.contains(run.session), run.result.stderr)
    }

    func testStaticallyLinkedLibstdcxxPoolIsSuppressedLikeTheSharedOne() throws {
        // gcc's driver links libstdc++ statically: its exception pool is allocated by the executable's own
        // static initializers. A leak from main stays a leak.
        let prog = try CProgram.build(
            "static_cxx",
            source: """
                #include <cstdlib>
                #include <stdexcept>
                void *kept;
                int main() {
                    try { throw std::runtime_error("x"); } catch (const std::exception &) {}
                    kept = std::malloc(333); // STATIC-LEAK
                    return 0;
                }
                """, language: "c++", extraFlags: ["-static-libstdc++", "-static-libgcc"])
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        XCTAssertEqual(report.totals.outstandingBytes, 333, "\(report.stacks.map { "\($0.bytes) \($0.frames.compactMap(\.function))" })")
        assertLeak(report, function: "main", bytes: 333, blocks: 1, program: prog, marker: "STATIC-LEAK")
        let pool = report.suppressed?.first { $0.rule == "static initializers (before main)" }
        XCTAssertEqual(pool?.bytes, 72704, "\(report.suppressed ?? [])")
    }

    func testASegfaultLeavesACompleteSessionThatSaysHowItDied() throws {
        let prog = try CProgram.build(
            "crasher",
            source: """
                #include <stdlib.h>
                #include <string.h>
                void *before_crash(int i) { return malloc(2000 + i); } // CR-MALLOC
                int main(void) {
                    for (int i = 0; i < 50; i++) memset(before_crash(i), 1, 10);
                    volatile int *bad = (int *)16;
                    return *bad;
                }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 128 + 11, "leakcollect exits the way the program died")
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "before_crash", bytes: (0..<50).reduce(0) { $0 + 2000 + UInt64($1) }, blocks: 50, program: prog, marker: "CR-MALLOC")
        XCTAssertEqual(report.session.end, "killed by signal 11 (SIGSEGV)")
        XCTAssertTrue(try Pipeline.text(run.session).contains("killed by signal 11 (SIGSEGV)"))
    }

    func testAnUnloadedLibraryStillSymbolizes() throws {
        let lib = try CProgram.build(
            "plugin",
            source: """
                #include <stdlib.h>
                void *plugin_leak(void) { return malloc(333); } // PL-MALLOC
                """, sharedObject: true)
        let prog = try CProgram.build(
            "dlhost",
            source: """
                #include <dlfcn.h>
                #include <unistd.h>
                int main(int argc, char **argv) {
                    (void)argc;
                    void *h = dlopen(argv[1], RTLD_NOW);
                    if (!h) return 2;
                    void *(*leak)(void) = (void *(*)(void))dlsym(h, "plugin_leak");
                    leak();
                    usleep(300000); /* a while later (the collector has seen the load) ... */
                    dlclose(h);
                    unlink(argv[1]); /* ... the library is unloaded and even removed from disk */
                    return 0;
                }
                """, extraFlags: ["-ldl"])
        let run = try Pipeline.collect(prog, [lib.path])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lib.path))
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "plugin_leak", bytes: 333, blocks: 1, program: lib, marker: "PL-MALLOC")
        XCTAssertEqual(report.stack(function: "plugin_leak")?.userFrame?.module, lib.path)
        XCTAssertEqual(report.stack(function: "plugin_leak")?.frames.dropFirst().first?.function, "main")
    }

    func testAttachToARunningProgramAndDetachWithCtrlC() throws {
        let prog = try CProgram.build(
            "attachee",
            source: """
                #include <stdlib.h>
                #include <unistd.h>
                #include <signal.h>
                static volatile sig_atomic_t go, stop;
                static void on_usr1(int s) { (void)s; go = 1; }
                static void on_usr2(int s) { (void)s; stop = 1; }
                void *after_attach(void) { return malloc(4321); } // AT-AFTER
                int main(void) {
                    signal(SIGUSR1, on_usr1);
                    signal(SIGUSR2, on_usr2);
                    while (!go) usleep(1000);
                    for (int i = 0; i < 3; i++) after_attach();
                    while (!stop) usleep(1000);
                    return 0;
                }
                """)
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        let app = try RunningProcess([prog.path], environment: env)
        defer { app.signal(SIGKILL) }
        let session = Pipeline.sessionPath("attach")
        let collector = try RunningProcess([try BuildProducts.leakcollect, "--attach", String(app.pid), "-o", session])
        // Once the collector says it attached, let the app leak, then Ctrl-C the collector.
        try collector.waitFor("attached to pid \(app.pid)", inStderr: true, timeout: 20)
        app.signal(SIGUSR1)
        usleep(300_000)
        collector.signal(SIGINT)
        XCTAssertEqual(try collector.wait().status, 0, collector.stderr)
        XCTAssertTrue(app.process.isRunning, "detaching must leave the app running")
        app.signal(SIGUSR2)
        XCTAssertEqual(try app.wait().status, 0)
        let report = try Pipeline.top(session)
        assertLeak(report, function: "after_attach", bytes: 3 * 4321, blocks: 3, program: prog, marker: "AT-AFTER")
        XCTAssertEqual(report.session.mode, "attach")
        XCTAssertEqual(report.session.end, SessionEnd.detached.summary)
    }

    func testAttachRightAfterAKilledCollectorIsNotRefused() throws {
        // A SIGKILLed collector's heartbeat is fresh for up to a second; its pid is dead, so it holds no claim.
        let prog = try CProgram.build(
            "reattach", source: "#include <stdlib.h>\n#include <unistd.h>\nint main(void){for(int i=0;i<400;i++){malloc(10);usleep(10000);}return 0;}\n")
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        let app = try RunningProcess([prog.path], environment: env)
        defer { app.signal(SIGKILL) }
        let first = try RunningProcess([try BuildProducts.leakcollect, "--attach", String(app.pid), "-o", Pipeline.sessionPath("first")])
        try first.waitFor("attached to pid \(app.pid)", inStderr: true, timeout: 20)
        first.signal(SIGKILL)
        _ = try first.wait()
        let second = try RunningProcess([
            try BuildProducts.leakcollect, "--attach", String(app.pid), "--duration", "300ms", "-o", Pipeline.sessionPath("second"),
        ])
        XCTAssertEqual(try second.wait().status, 0, second.stderr)
        XCTAssertFalse(second.stderr.contains("already traced"), second.stderr)
    }

    func testAForkedChildDoesNotPolluteTheParentsSession() throws {
        let prog = try CProgram.build(
            "forker",
            source: """
                #include <stdlib.h>
                #include <sys/wait.h>
                #include <unistd.h>
                void *parent_leak(void) { return malloc(111); } // FK-PARENT
                void *child_leak(void) { return malloc(222); }
                int main(void) {
                    parent_leak();
                    pid_t pid = fork();
                    if (pid == 0) { for (int i = 0; i < 100; i++) child_leak(); _exit(0); }
                    int st;
                    waitpid(pid, &st, 0);
                    return WEXITSTATUS(st);
                }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "parent_leak", bytes: 111, blocks: 1, program: prog, marker: "FK-PARENT")
        XCTAssertNil(report.stack(function: "child_leak"))
    }
}
