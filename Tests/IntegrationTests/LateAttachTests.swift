import Foundation
import LeakReport
import TestSupport
import XCTest

/// The shim's live table: an attach long after the start sees what was allocated before it, attaches
/// repeat on one process, and records lost to a stalled collector or to many threads are made good by a
/// resync, so the totals at the end are the program's exact leaks.
final class LateAttachTests: XCTestCase {
    private func shimEnvironment() throws -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        env.removeValue(forKey: "LEAKSHIM_COLLECTOR_PID")
        return env
    }

    /// A program that leaks on request ("leak" on stdin: one 1000-byte block from round_leak) and churns
    /// short-lived blocks on a second thread meanwhile, so the table changes while it is read.
    private func roundsProgram() throws -> CProgram {
        try CProgram.build(
            "rounds",
            source: """
                #include <pthread.h>
                #include <stdio.h>
                #include <stdlib.h>
                #include <string.h>
                #include <unistd.h>
                void *round_leak(void) { return malloc(1000); } // RL-MALLOC
                static void *churn(void *arg) {
                    (void)arg;
                    for (;;) {
                        void *p[16];
                        for (int i = 0; i < 16; i++) p[i] = malloc(24 + i * 8);
                        for (int i = 0; i < 16; i++) free(p[i]);
                        usleep(100);
                    }
                    return NULL;
                }
                int main(void) {
                    pthread_t t;
                    pthread_create(&t, NULL, churn, NULL);
                    char line[64];
                    int n = 0;
                    setvbuf(stdout, NULL, _IOLBF, 0);
                    while (fgets(line, sizeof line, stdin)) {
                        if (strncmp(line, "leak", 4) == 0) { round_leak(); printf("leaked %d\\n", ++n); }
                    }
                    return 0;
                }
                """)
    }

    func testAttachTwoSecondsAfterStartReportsTheBlocksLeakedBeforeItExactly() throws {
        let prog = try CProgram.build(
            "early",
            source: """
                #include <stdio.h>
                #include <stdlib.h>
                #include <signal.h>
                #include <unistd.h>
                static volatile sig_atomic_t go, stop;
                static void on_usr1(int s) { (void)s; go = 1; }
                static void on_usr2(int s) { (void)s; stop = 1; }
                void *early_leak(int i) { return malloc(1024 + i); } // EL-MALLOC
                char *early_grow(void) {
                    char *p = malloc(10);
                    for (int i = 1; i <= 5; i++) p = realloc(p, 10 + i * 100); // EG-REALLOC
                    return p;
                }
                void churn(void) { for (int i = 0; i < 100000; i++) free(malloc(64)); }
                void *after_attach(void) { return malloc(4321); } // AA-MALLOC
                int main(void) {
                    signal(SIGUSR1, on_usr1);
                    signal(SIGUSR2, on_usr2);
                    for (int i = 0; i < 25; i++) early_leak(i);
                    early_grow();
                    churn();
                    printf("ready\\n");
                    fflush(stdout);
                    while (!go) usleep(1000);
                    for (int i = 0; i < 3; i++) after_attach();
                    while (!stop) usleep(1000);
                    return 0;
                }
                """)
        let app = try RunningProcess([prog.path], environment: try shimEnvironment())
        defer { app.signal(SIGKILL) }
        try app.waitFor("ready", timeout: 20)
        sleep(2)  // no collector for two seconds: the table alone keeps what was allocated
        let session = Pipeline.sessionPath("early")
        let collector = try RunningProcess([try BuildProducts.leakcollect, "--attach", String(app.pid), "-o", session])
        try collector.waitFor("attached to pid \(app.pid)", inStderr: true, timeout: 20)
        app.signal(SIGUSR1)
        usleep(300_000)
        collector.signal(SIGINT)
        XCTAssertEqual(try collector.wait().status, 0, collector.stderr)
        app.signal(SIGUSR2)
        XCTAssertEqual(try app.wait().status, 0)

        let report = try Pipeline.top(session)
        // 1024 + 1025 + ... + 1048
        assertLeak(report, function: "early_leak", bytes: UInt64((0..<25).reduce(0) { $0 + 1024 + $1 }), blocks: 25, program: prog, marker: "EL-MALLOC")
        assertLeak(report, function: "early_grow", bytes: 510, blocks: 1, program: prog, marker: "EG-REALLOC")
        assertLeak(report, function: "after_attach", bytes: 3 * 4321, blocks: 3, program: prog, marker: "AA-MALLOC")
        XCTAssertNil(report.stack(function: "churn"), "freed blocks are not live")
        XCTAssertEqual(report.stack(function: "early_leak")?.frames.dropFirst().first?.function, "main")
        XCTAssertGreaterThanOrEqual(report.counters?["snapshot_blocks"] ?? 0, 26)
        XCTAssertEqual(report.counters?["missed_frees"] ?? 0, 0)
        XCTAssertEqual(report.totals.lostEvents, 0)
        XCTAssertEqual(report.session.mode, "attach")
        let text = try Pipeline.text(session)
        XCTAssertTrue(text.contains("before the attach:"), text)
    }

    func testAttachDetachAndAttachAgainThreeTimesOnOneProcess() throws {
        let prog = try roundsProgram()
        let app = try RunningProcess([prog.path], environment: try shimEnvironment())
        defer { app.signal(SIGKILL) }
        var leaked = 0
        func leak() throws {
            leaked += 1
            app.send("leak")
            try app.waitFor("leaked \(leaked)\n", timeout: 20)
        }
        for round in 1...3 {
            try leak()
            let session = Pipeline.sessionPath("round\(round)")
            // Rounds end by --duration and by Ctrl-C in turn.
            let byDuration = round != 2
            let collector = try RunningProcess(
                [try BuildProducts.leakcollect, "--attach", String(app.pid), "-o", session] + (byDuration ? ["--duration", "1500ms"] : []))
            try collector.waitFor("attached to pid \(app.pid)", inStderr: true, timeout: 20)
            try leak()
            if !byDuration {
                usleep(200_000)
                collector.signal(SIGINT)
            }
            XCTAssertEqual(try collector.wait().status, 0, collector.stderr)
            XCTAssertTrue(app.process.isRunning, "detaching must leave the app running")
            let report = try Pipeline.top(session)
            assertLeak(report, function: "round_leak", bytes: UInt64(1000 * leaked), blocks: UInt64(leaked), program: prog, marker: "RL-MALLOC")
            // The churn holds at most 16 blocks at any moment: a detach can fall between its mallocs and frees.
            let churnLive = report.stacks.filter { $0.frames.contains { $0.function == "churn" } }.reduce(0) { $0 + $1.blocks }
            XCTAssertLessThanOrEqual(churnLive, 16, "round \(round): more churn blocks live than it ever holds")
            if report.totals.lostEvents == 0 {
                // A free in flight while the snapshot is read (out of the table already, its record after the
                // attach point) is a free of a block the snapshot does not hold: at most one per thread (the
                // app has two that allocate). The totals above are exact either way.
                XCTAssertLessThanOrEqual(report.counters?["missed_frees"] ?? 0, 2, "round \(round)")
            } else {
                // A busy machine: the ring overflowed, and the resync from the live table made the totals exact
                // (asserted above); frees whose allocations were lost were counted as missed meanwhile.
                XCTAssertGreaterThanOrEqual(report.counters?["resyncs"] ?? 0, 1, "round \(round): lost events without a resync")
            }
        }
        app.closeInput()
        XCTAssertEqual(try app.wait().status, 0)
    }

    /// A program that allocates flat out on `threads` threads for `seconds`: each iteration frees what
    /// it allocates but one block in 512, which it leaks from steady_leak; it writes how many to argv[1].
    private func flatOutProgram() throws -> CProgram {
        try CProgram.build(
            "flatout",
            source: """
                #include <pthread.h>
                #include <stdio.h>
                #include <stdlib.h>
                #include <time.h>
                static double seconds;
                static int iterations;
                static long leaked[256];
                void *steady_leak(void) { return malloc(48); } // SL-MALLOC
                void *fixed_leak(void) { return malloc(7777); } // FL-MALLOC
                static double now(void) {
                    struct timespec ts;
                    clock_gettime(CLOCK_MONOTONIC, &ts);
                    return ts.tv_sec + ts.tv_nsec / 1e9;
                }
                static void *work(void *arg) {
                    long id = (long)arg;
                    double end = now() + seconds;
                    for (long i = 0; iterations ? i < iterations : now() < end; i++) {
                        void *p = malloc(16 + (i & 255));
                        void *q = malloc(32);
                        free(p);
                        free(q);
                        if ((i & 511) == 0) { steady_leak(); leaked[id]++; }
                    }
                    return NULL;
                }
                int main(int argc, char **argv) {
                    int threads = atoi(argv[2]);
                    seconds = atof(argv[3]);
                    iterations = argc > 4 ? atoi(argv[4]) : 0;
                    fixed_leak();
                    pthread_t t[256];
                    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, work, (void *)i);
                    long total = 0;
                    for (int i = 0; i < threads; i++) { pthread_join(t[i], NULL); total += leaked[i]; }
                    FILE *f = fopen(argv[1], "w");
                    fprintf(f, "%ld\\n", total);
                    fclose(f);
                    return 0;
                }
                """)
    }

    private func leakedCount(_ path: String) throws -> UInt64 {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let n = UInt64(text) else { throw TestSupportError("no count in \(path): \(text)") }
        return n
    }

    func testACollectorStoppedForThreeSecondsEndsWithTheProgramsExactLeaks() throws {
        let prog = try flatOutProgram()
        let countFile = prog.directory.appendingPathComponent("count").path
        let session = Pipeline.sessionPath("sigstop")
        let started = Date()
        let collector = try RunningProcess([
            try BuildProducts.leakcollect, "--ring-size", "1M", "-o", session, "--", prog.path, countFile, "1", "5",
        ])
        usleep(1_000_000)  // running, and its ring being read
        collector.signal(SIGSTOP)
        sleep(3)
        collector.signal(SIGCONT)
        let status = try collector.wait(timeout: 120)
        XCTAssertEqual(status.status, 0, collector.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30, "the app must not hang on a stopped collector")

        let n = try leakedCount(countFile)
        let report = try Pipeline.top(session)
        assertLeak(report, function: "steady_leak", bytes: 48 * n, blocks: n, program: prog, marker: "SL-MALLOC")
        assertLeak(report, function: "fixed_leak", bytes: 7777, blocks: 1, program: prog, marker: "FL-MALLOC")
        XCTAssertNil(report.stack(function: "work"), "no phantom blocks from lost frees: \(report.stacks.map { ($0.userFrame?.function, $0.blocks) })")
        XCTAssertEqual(report.totals.outstandingBlocks, n + 1 + report.stacks.filter { !["steady_leak", "fixed_leak"].contains($0.userFrame?.function ?? "") }.reduce(0) { $0 + $1.blocks })
        // Three seconds of a stopped collector lose records; the resync is what makes the totals exact.
        XCTAssertGreaterThan(report.totals.lostEvents, 0, "the stop was meant to overflow the ring")
        XCTAssertGreaterThanOrEqual(report.counters?["resyncs"] ?? 0, 1)
        let text = try Pipeline.text(session)
        XCTAssertTrue(text.contains("resynchronized"), text)
    }

    /// A program that keeps `argv[1]` blocks of 24 bytes live from held_block (all leaked at its end) and,
    /// for `argv[2]` seconds, replaces random ones of them while it churns through short-lived blocks.
    private func heldChurnProgram() throws -> CProgram {
        try CProgram.build(
            "heldchurn",
            source: """
                #include <stdint.h>
                #include <stdio.h>
                #include <stdlib.h>
                #include <time.h>
                __attribute__((noinline)) void *held_block(void) { return malloc(24); }
                static double now(void) {
                    struct timespec ts;
                    clock_gettime(CLOCK_MONOTONIC, &ts);
                    return ts.tv_sec + ts.tv_nsec / 1e9;
                }
                int main(int argc, char **argv) {
                    long hold = atol(argv[1]);
                    double end = now() + atof(argv[2]);
                    void **held = malloc(hold * sizeof *held);
                    for (long i = 0; i < hold; i++) held[i] = held_block();
                    uint64_t s = 88172645463325252ull;
                    while (now() < end) {
                        for (int k = 0; k < 1024; k++) {
                            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                            long i = (long)(s % (uint64_t)hold);
                            free(held[i]);
                            held[i] = held_block();
                            free(malloc(16 + (k & 255)));
                        }
                    }
                    free(held);
                    return 0;
                }
                """)
    }

    /// A resync at a scale where the shim's table is read over several polls, with the ring drained and the
    /// program's frees and allocations of the held blocks applied between them: the totals end exact.
    func testAResyncReadOverSeveralPollsBesideTheStreamEndsExact() throws {
        let prog = try heldChurnProgram()
        let session = Pipeline.sessionPath("resync-slices")
        let hold: UInt64 = 400_000
        let collector = try RunningProcess([try BuildProducts.leakcollect, "--ring-size", "1M", "-o", session, "--", prog.path, "\(hold)", "6"])
        usleep(2_000_000)  // the held blocks allocated, the churn under way
        collector.signal(SIGSTOP)
        sleep(2)
        collector.signal(SIGCONT)
        let status = try collector.wait(timeout: 120)
        XCTAssertEqual(status.status, 0, collector.stderr)
        let report = try Pipeline.top(session)
        // Two stacks reach held_block: the first fill and the replacements.
        let held = report.stacks(through: "held_block")
        XCTAssertEqual(held.reduce(0) { $0 + $1.blocks }, hold)
        XCTAssertEqual(held.reduce(0) { $0 + $1.bytes }, 24 * hold)
        XCTAssertEqual(report.totals.outstandingBlocks, hold + report.stacks.filter { $0.userFrame?.function != "held_block" }.reduce(0) { $0 + $1.blocks })
        XCTAssertNil(report.stack(function: "main"), "no phantom blocks from the churn's lost frees")
        XCTAssertGreaterThan(report.totals.lostEvents, 0, "the stop was meant to overflow the ring")
        XCTAssertGreaterThanOrEqual(report.counters?["resyncs"] ?? 0, 1)
        XCTAssertGreaterThan(report.counters?["resync_slices"] ?? 0, report.counters?["resyncs"] ?? 0, "each resync read in one poll")
    }

    /// Issue 12 §2: 64 threads allocating flat out for 5 s on a machine with far fewer cores lose nothing and
    /// do not deadlock. Writers that keep losing the race for freed ring space to the others wait (the
    /// collector is making room), so nothing is dropped; before, each one gave up after a second of its own.
    func testSixtyFourThreadsAllocatingFlatOutForFiveSecondsLoseNothing() throws {
        let prog = try flatOutProgram()
        let countFile = prog.directory.appendingPathComponent("count").path
        let session = Pipeline.sessionPath("threads64")
        let started = Date()
        let run = try Run.capture([try BuildProducts.leakcollect, "-o", session, "--", prog.path, countFile, "64", "5"], timeout: 120)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 100, "no deadlock")
        let n = try leakedCount(countFile)
        XCTAssertGreaterThan(n, 64, "every thread allocated flat out for 5 s")
        let report = try Pipeline.top(session)
        assertLeak(report, function: "steady_leak", bytes: 48 * n, blocks: n, program: prog, marker: "SL-MALLOC")
        assertLeak(report, function: "fixed_leak", bytes: 7777, blocks: 1, program: prog, marker: "FL-MALLOC")
        XCTAssertNil(report.stack(function: "work"), "no phantom blocks")
        XCTAssertEqual(report.totals.lostEvents, 0, "lost events (resyncs \(report.counters?["resyncs"] ?? 0))")
        XCTAssertNil(report.counters?["resyncs"], "nothing lost, nothing to resynchronize")
        print("64 threads for 5 s: \(n) leaked blocks, ring waits \(report.counters?["ring_waits"] ?? 0)")
    }
}

/// A forked child's live table starts as a copy of its parent's: attached to, the child reports the
/// blocks it inherited and its own, and the parent's table is untouched by the child.
final class LateAttachForkTests: XCTestCase {
    func testAnAttachToAForkedChildSeesWhatItInheritedAndWhatItLeaked() throws {
        let prog = try CProgram.build(
            "forkattach",
            source: """
                #include <signal.h>
                #include <stdio.h>
                #include <stdlib.h>
                #include <sys/wait.h>
                #include <unistd.h>
                void *parent_leak(void) { return malloc(3333); } // FA-PARENT
                void *child_leak(void) { return malloc(2222); } // FA-CHILD
                int main(void) {
                    for (int i = 0; i < 4; i++) parent_leak();
                    pid_t pid = fork();
                    if (pid == 0) {
                        for (int i = 0; i < 2; i++) child_leak();
                        printf("child %d\\n", getpid());
                        fflush(stdout);
                        pause();
                        _exit(0);
                    }
                    int st;
                    waitpid(pid, &st, 0);
                    return 0;
                }
                """)
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        let app = try RunningProcess([prog.path], environment: env)
        defer { app.signal(SIGKILL) }
        try app.waitFor("child ", timeout: 20)
        guard let line = app.stdout.split(separator: "\n").first(where: { $0.hasPrefix("child ") }), let child = Int32(line.dropFirst(6)) else {
            return XCTFail("no child pid in \(app.stdout)")
        }
        defer { kill(child, SIGKILL) }
        let childSession = Pipeline.sessionPath("forkchild")
        let r = try Run.capture([try BuildProducts.leakcollect, "--attach", String(child), "--duration", "300ms", "-o", childSession])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try Pipeline.top(childSession)
        assertLeak(report, function: "child_leak", bytes: 2 * 2222, blocks: 2, program: prog, marker: "FA-CHILD")
        assertLeak(report, function: "parent_leak", bytes: 4 * 3333, blocks: 4, program: prog, marker: "FA-PARENT")

        let parentSession = Pipeline.sessionPath("forkparent")
        let p = try Run.capture([try BuildProducts.leakcollect, "--attach", String(app.pid), "--duration", "300ms", "-o", parentSession])
        XCTAssertEqual(p.status, 0, p.stderr)
        let parent = try Pipeline.top(parentSession)
        assertLeak(parent, function: "parent_leak", bytes: 4 * 3333, blocks: 4, program: prog, marker: "FA-PARENT")
        XCTAssertNil(parent.stack(function: "child_leak"), "the child wrote into its parent's table")
    }
}

/// The live table is written by the traced process, which may be hostile: a collector (perhaps root)
/// that reads a damaged one gives one line and a non-zero exit, or skips what it cannot trust; it never
/// crashes or believes a bogus block.
final class HostileLiveTableTests: XCTestCase {
    private static let ringInclude = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/Collector/RingFormat/include").path

    /// A program that leaks 5 blocks of 1234 bytes from kept(), then damages its own live table as argv[1] says.
    private func damagingProgram() throws -> CProgram {
        try CProgram.build(
            "livedamage",
            source: """
                #include <dirent.h>
                #include <stdio.h>
                #include <stdlib.h>
                #include <string.h>
                #include <sys/mman.h>
                #include <unistd.h>
                #include "leakring.h"
                void *kept(void) { return malloc(1234); } // HL-KEPT
                static unsigned char *table(void) {
                    DIR *d = opendir("/proc/self/fd");
                    struct dirent *e;
                    char path[300], target[300];
                    while ((e = readdir(d))) {
                        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
                        ssize_t n = readlink(path, target, sizeof target - 1);
                        if (n <= 0) continue;
                        target[n] = 0;
                        if (strstr(target, LR_LIVE_MEMFD_NAME)) {
                            int fd = atoi(e->d_name);
                            return mmap(NULL, LR_LIVE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                        }
                    }
                    return NULL;
                }
                int main(int argc, char **argv) {
                    (void)argc;
                    for (int i = 0; i < 5; i++) kept();
                    unsigned char *t = table();
                    if (!t || t == MAP_FAILED) { printf("no table\\n"); return 1; }
                    lr_live_header *h = (lr_live_header *)t;
                    lr_live_slot *seg = (lr_live_slot *)(t + lr_live_segment_offset(0));
                    if (!strcmp(argv[1], "segments")) h->segments = 999;
                    if (!strcmp(argv[1], "modlog")) h->modlog_used = 1ull << 40;
                    if (!strcmp(argv[1], "modlog-record")) ((lr_record *)(t + LR_LIVE_MODLOG_OFF))->size = 4096;
                    if (!strcmp(argv[1], "slots")) {
                        unsigned seed = 1;
                        for (int i = 0; i < 4096; i++) {
                            if (seg[i].addr >= LR_LIVE_FIRST_ADDR) continue; /* the real blocks stay */
                            seg[i].addr = 0x100000 + 16 * (uint64_t)i;
                            seg[i].size = rand_r(&seed);
                            seg[i].fn = (uint8_t)(i % 2 ? 200 : LR_FN_MALLOC);
                            seg[i].stack_id = i % 2 ? 5 : 0xfffffff0u;
                            seg[i].seq = 0;
                        }
                    }
                    if (!strcmp(argv[1], "stackindex")) {
                        uint32_t *index = (uint32_t *)(t + LR_LIVE_STACKIDX_OFF);
                        for (int i = 0; i < 64; i++) index[i] = i % 2 ? 0xffffffffu : 7;
                    }
                    printf("damaged\\n");
                    fflush(stdout);
                    pause();
                    return 0;
                }
                """, extraFlags: ["-I", Self.ringInclude])
    }

    private func attach(_ damage: String) throws -> (Run.Result, String, CProgram) {
        let prog = try damagingProgram()
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        let app = try RunningProcess([prog.path, damage], environment: env)
        defer { app.signal(SIGKILL) }
        try app.waitFor("damaged", timeout: 20)
        let session = Pipeline.sessionPath("damage-\(damage)")
        let r = try Run.capture([try BuildProducts.leakcollect, "--attach", String(app.pid), "--duration", "300ms", "-o", session])
        return (r, session, prog)
    }

    func testAnImpossibleHeaderOrModuleLogIsRefusedInOneLine() throws {
        for damage in ["segments", "modlog", "modlog-record"] {
            let (r, _, _) = try attach(damage)
            XCTAssertNotEqual(r.status, 0, damage)
            // After the line that says it attached, one line that says what is wrong, and nothing else.
            let lines = r.stderr.split(separator: "\n").filter { !$0.contains("attached to pid") }
            XCTAssertEqual(lines.count, 1, "\(damage): \(r.stderr)")
            XCTAssertTrue(lines.first?.contains("leakshim live table of pid") == true && lines.first?.contains("is corrupt") == true, "\(damage): \(r.stderr)")
        }
    }

    func testBogusSlotsAndStackOffsetsAreSkippedAndTheRealBlocksKept() throws {
        for damage in ["slots", "stackindex"] {
            let (r, session, prog) = try attach(damage)
            XCTAssertEqual(r.status, 0, "\(damage): \(r.stderr)")
            let report = try Pipeline.top(session)
            if damage == "slots" {
                assertLeak(report, function: "kept", bytes: 5 * 1234, blocks: 5, program: prog, marker: "HL-KEPT")
                XCTAssertGreaterThanOrEqual(report.counters?["live_table_unreadable_slots"] ?? 0, 2000, "slots with a bad function or stack id")
                // Slots with a valid function and no stack are believed: only a bounds check can be done on them.
            } else {
                // Stacks whose index points outside the pool are unknown: their blocks keep no stack, none is invented.
                // kept()'s blocks keep their stack if its index entry survived, else they join the blocks of no stack
                // (with the others whose index entries were damaged, such as stdio's buffer).
                let keptStack = report.stack(function: "kept")
                let noStack = report.stacks.first { $0.frames.isEmpty }
                XCTAssertTrue(
                    (keptStack?.bytes == 5 * 1234 && keptStack?.blocks == 5) || ((noStack?.blocks ?? 0) >= 5 && (noStack?.bytes ?? 0) >= 5 * 1234),
                    "\(report.stacks.map { ($0.bytes, $0.blocks, $0.userFrame?.function) })")
                XCTAssertFalse(report.stacks.contains { $0.userFrame?.function != "kept" && $0.frames.contains { $0.function == "kept" } })
            }
        }
    }
}
