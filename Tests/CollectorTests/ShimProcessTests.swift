import CollectionRunner
import ShimSource
import Tracking
import Foundation
import Glibc
import RingFormat
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// Threads, fork, SIGKILL and C++ under the shim.
final class ShimProcessTests: XCTestCase {
    /// Eight threads on two cores allocate and free same-sized blocks and hand blocks to each other. With one
    /// arena and no tcache, the allocator gives a freed block to whichever thread mallocs next, and threads
    /// are preempted all the time, also between a real free and its record. Replaying the events, no
    /// allocation may land on a block that is still live: every free reached the ring before the
    /// allocation that reused its address.
    func testCrossThreadFreesPrecedeTheReuse() throws {
        let threads = 8, iterations = 30000
        let program = try CProgram.build("pingpong", source: """
            #include <pthread.h>
            #include <stdatomic.h>
            #include <stdio.h>
            #include <stdlib.h>
            #define T \(threads)
            #define N \(iterations)
            #define Q 64
            static _Atomic(void *) handoff[Q];
            static pthread_barrier_t start;
            static void *worker(void *arg) {
                unsigned seed = 7 + (unsigned)(long)arg;
                pthread_barrier_wait(&start);
                for (int i = 0; i < N; i++) {
                    free(malloc(24));
                    void *old = atomic_exchange(&handoff[rand_r(&seed) % Q], malloc(24));
                    free(old); /* often a block another thread allocated */
                }
                return NULL;
            }
            int main(void) {
                pthread_t t[T];
                pthread_barrier_init(&start, NULL, T);
                for (long i = 0; i < T; i++) pthread_create(&t[i], NULL, worker, (void *)i);
                for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
                for (int k = 0; k < Q; k++) free(atomic_load(&handoff[k]));
                printf("done 1\\n");
                return 0;
            }
            """)
        var live = Set<UInt64>()
        var lastTid: [UInt64: UInt32] = [:]
        var tids = Set<UInt32>()
        var reusedByOtherThread = 0, heapAllocs = 0, violations: [UInt64] = []
        let run = try Shim.run(
            // A ring that holds the whole run: this test is about ordering, and its debug-built reader with a
            // set per event must not lose records to a busy machine.
            program.path, environment: ["GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1", "LEAKSHIM_RING_SIZE": "512m"]
        ) { e in
            switch e {
            case .alloc(let a) where a.kind == .heap:
                heapAllocs += 1
                if let r = a.replaces { live.remove(r) }
                if !live.insert(a.address).inserted { violations.append(a.address) }
                if let t = lastTid[a.address], t != a.tid { reusedByOtherThread += 1 }
                lastTid[a.address] = a.tid
                tids.insert(a.tid)
            case .free(let p, _, _):
                live.remove(p)
            default: break
            }
        }
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try run.value("done"), 1)
        XCTAssertEqual(violations.count, 0, "allocated while still live: \(violations.prefix(5).map { String($0, radix: 16) })")
        XCTAssertGreaterThan(reusedByOtherThread, 1000, "the program did not make threads reuse each other's blocks")
        XCTAssertGreaterThanOrEqual(heapAllocs, threads * iterations * 2)
        XCTAssertGreaterThanOrEqual(tids.count, threads)
        XCTAssertEqual(run.counters.lostEvents, 0)
        XCTAssertEqual(run.unreadableBytes, 0)
    }

    /// The forked child writes into a ring of its own, one generation on, never into its parent's; the
    /// child's ring can be attached by pid and re-sends modules and stacks it needs.
    func testForkedChildGetsItsOwnRing() throws {
        let program = try CProgram.build("forker", source: CSnippets.handshake + """
            #include <stdlib.h>
            #include <sys/wait.h>
            __attribute__((noinline)) void *child_site(size_t n) { return malloc(n); }
            int main(int argc, char **argv) {
                (void)argc;
                void *a = malloc(111111);
                printf("before %p\\n", a);
                fflush(stdout);
                pid_t c = fork();
                if (c == 0) {
                    void *x = child_site(222222);
                    write_pid(argv[1]);
                    wait_for_file(argv[2]);
                    void *y = child_site(444444);
                    free(x);
                    free(y);
                    exit(0);
                }
                int st;
                waitpid(c, &st, 0);
                void *b = malloc(333333);
                printf("child %d\\n", (int)c);
                printf("after %p\\n", b);
                free(a);
                free(b);
                return 0;
            }
            """)
        let pidFile = program.directory.appendingPathComponent("pid").path
        let goFile = program.directory.appendingPathComponent("go").path
        var childEvents: [Event] = []
        var childGenerationAtAttach: UInt64 = 0
        var childInfo: RingInfo?
        var attached = false
        let run = try Shim.run(program.path, arguments: [pidFile, goFile]) { _ in
            guard !attached, let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let child = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { return }
            attached = true
            let ring = try RingMapping.open(pid: child)
            childGenerationAtAttach = lr_load_acquire_u64(&ring.header.pointee.cursor) >> 48
            let reader = RingReader(mapping: ring)
            try reader.attach(mode: .attach)
            childInfo = reader.info
            FileManager.default.createFile(atPath: goFile, contents: nil)
            while RingMapping.isAlive(pid: child) {
                try reader.drain { childEvents.append($0) }
                _ = reader.sleepUntilData(timeout: .milliseconds(2))
            }
            _ = try reader.drainToEnd { childEvents.append($0) }
        }
        XCTAssertEqual(run.status, 0, run.stderr)
        let child = UInt32(try run.value("child"))
        let sizes = run.allocs.map(\.size)
        XCTAssertTrue(sizes.contains(111111))
        XCTAssertTrue(sizes.contains(333333))
        XCTAssertFalse(sizes.contains(222222), "the child wrote into the parent's ring")
        XCTAssertFalse(sizes.contains(444444), "the child wrote into the parent's ring")
        XCTAssertEqual(run.allocs.filter { $0.tid == child }, [])

        XCTAssertEqual(childInfo?.pid, Int32(child))
        XCTAssertEqual(childInfo?.expectsCollector, false)
        XCTAssertEqual(childGenerationAtAttach, 1, "the child's ring starts one generation above the parent's")
        // What the child allocated after the attach arrives with its stack and modules re-sent before it.
        let late = childEvents.firstIndex { if case .alloc(let a) = $0 { return a.size == 444444 } else { return false } }
        let index = try XCTUnwrap(late, "\(childEvents)")
        guard case .alloc(let y) = childEvents[index], case .local(let id) = y.stack else { return XCTFail("no stack") }
        XCTAssertEqual(y.tid, child)
        let stackAt = childEvents.firstIndex { if case .stack(let d) = $0 { return d.id == id } else { return false } }
        XCTAssertNotNil(stackAt)
        XCTAssertLessThan(stackAt ?? .max, index)
        let modulesAt = childEvents.firstIndex { if case .module(let m) = $0 { return m.path == program.path } else { return false } }
        XCTAssertLessThan(modulesAt ?? .max, stackAt ?? -1)
        XCTAssertFalse(childEvents.contains { if case .alloc(let a) = $0 { return a.size == 222222 } else { return false } },
                       "records from before the attach are discarded")
    }

    /// A program killed mid-run leaves a ring the reader drains to its end, cleanly.
    func testSigkilledProgramLeavesADrainableRing() throws {
        let program = try CProgram.build("busy", source: """
            #include <pthread.h>
            #include <stdlib.h>
            static void *spin(void *arg) {
                (void)arg;
                for (unsigned i = 0;; i++) free(malloc(32 + i % 512));
                return NULL;
            }
            int main(void) {
                pthread_t t;
                pthread_create(&t, NULL, spin, NULL);
                spin(NULL);
            }
            """)
        let run = try Shim.run(program.path, killAfter: .milliseconds(300))
        XCTAssertEqual(run.status, -SIGKILL)
        XCTAssertGreaterThan(run.allocs.count, 1000)
        // The last records may have been reserved and never committed; the drain stopped there, cleanly.
        XCTAssertLessThan(run.unreadableBytes, UInt64(LR_DEFAULT_DATA_SIZE))
        let frees = run.events.filter { if case .free = $0 { return true } else { return false } }.count
        XCTAssertGreaterThan(frees, 1000)
    }

    /// C++ new goes through malloc: the allocation is charged to the user's function, and delete frees it.
    func testCxxNewAndDeleteAreTracked() throws {
        let program = try CProgram.build("cxx", source: """
            #include <cstdio>
            struct Widget { char data[321]; };
            extern "C" __attribute__((noinline)) Widget *make_widget() { return new Widget(); }
            extern "C" __attribute__((noinline)) int *make_array() { return new int[777]; }
            int main() {
                std::printf("fn make_widget %p\\n", (void *)make_widget);
                std::printf("fn make_array %p\\n", (void *)make_array);
                Widget *w = make_widget();
                int *a = make_array();
                std::printf("widget %p\\narray %p\\n", (void *)w, (void *)a);
                delete w;
                delete[] a;
                return 0;
            }
            """, language: "c++")
        let run = try Shim.run(program.path)
        XCTAssertEqual(run.status, 0, run.stderr)
        let ranges = try Shim.functionRanges(program, run)
        for (label, size, site) in [("widget", UInt64(321), "make_widget"), ("array", UInt64(777 * 4), "make_array")] {
            let p = try run.value(label)
            let found = run.allocs(at: p).filter { $0.size == size }
            XCTAssertEqual(found.count, 1, label)
            guard let a = found.first else { continue }
            XCTAssertEqual(a.function, .malloc)
            let frames = run.frames(of: a)
            let range = try XCTUnwrap(ranges[site])
            // operator new (libstdc++) calls malloc; the user's function is right behind it.
            XCTAssertTrue(frames.prefix(3).contains { range.contains($0) }, "\(site) not in \(frames.prefix(3))")
            XCTAssertFalse(range.contains(frames.first ?? 0), "frame 0 is operator new, inside libstdc++")
            let allocAt = run.blockEvents.firstIndex(of: .alloc(a))
            let freeAt = run.blockEvents.lastIndex(of: .free(address: p, kind: .heap, pending: false))
            XCTAssertNotNil(allocAt)
            XCTAssertNotNil(freeAt)
            XCTAssertLessThan(allocAt ?? .max, freeAt ?? -1)
        }
    }

    /// With no collector the app writes no records at all (the live table keeps what is live) and never
    /// waits; a collector that attaches later bumps the generation and gets new records with their stacks
    /// and modules re-sent.
    func testNoRecordsWithoutReaderThenAttachWorks() throws {
        let program = try CProgram.build("noreader", source: CSnippets.handshake + """
            #include <stdlib.h>
            #include <time.h>
            __attribute__((noinline)) void *site(size_t n) { return malloc(n); }
            int main(int argc, char **argv) {
                (void)argc;
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                for (int i = 0; i < 100000; i++) free(site(100));
                clock_gettime(CLOCK_MONOTONIC, &t1);
                printf("ms %ld\\n", (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
                fflush(stdout);
                write_pid(argv[1]);
                wait_for_file(argv[2]);
                void *p = site(7777);
                printf("late %p\\n", p);
                return 0;
            }
            """)
        let proc = try HandshakeProcess(
            program, environment: try Shim.environment(["LEAKSHIM_RING_SIZE": "100000", "LEAKSHIM_COLLECTOR_PID": nil]))
        let pid = try proc.pid()
        XCTAssertEqual(pid, proc.process.processIdentifier)
        let ring = try RingMapping.open(pid: pid)
        XCTAssertEqual(ring.dataSize, 131072, "LEAKSHIM_RING_SIZE is rounded up to a power of two")
        XCTAssertEqual(ring.flags & LR_FLAG_EXPECT_COLLECTOR, 0)
        // 200000 allocations and frees with nobody reading: not one record, so nothing to drop or wait for.
        XCTAssertEqual(lr_load_acquire_u64(&ring.header.pointee.cursor) & ((1 << UInt64(LR_POS_BITS)) - 1), 0)
        XCTAssertEqual(lr_load_acquire_u64(&ring.header.pointee.lost_events), 0)
        XCTAssertEqual(lr_load_acquire_u64(&ring.header.pointee.waits), 0)
        let reader = RingReader(mapping: ring)
        try reader.attach(mode: .attach)
        XCTAssertEqual(reader.counters, RingCounters())
        let events = try proc.goAndCollect(reader)
        let run = ShimRun(pid: pid, events: events, stdout: proc.finish(), stderr: "", status: proc.process.terminationStatus,
                          counters: reader.counters, info: reader.info, unreadableBytes: 0)
        XCTAssertLessThan(try run.value("ms"), 5000, "the app was held up by a ring nobody reads")
        let late = try run.value("late")
        let a = try XCTUnwrap(run.allocs(at: late).first { $0.size == 7777 }, "\(events)")
        guard case .local(let id) = a.stack else { return XCTFail("no stack") }
        XCTAssertNotNil(run.stacks[id], "the stack was re-sent in the new generation")
        XCTAssertTrue(events.contains { if case .module(let m) = $0 { return m.path == program.path } else { return false } })
        XCTAssertEqual(run.counters.lostEvents, 0)
    }

    /// LEAKSHIM_DEPTH cuts deep stacks, marks them truncated and counts them.
    func testDepthLimitTruncatesAndCounts() throws {
        let program = try CProgram.build("deep", source: """
            #include <stdio.h>
            #include <stdlib.h>
            __attribute__((noinline)) void *down(int n) { return n ? down(n - 1) : malloc(999); }
            int main(void) { printf("p %p\\n", down(100)); return 0; }
            """)
        let run = try Shim.run(program.path, environment: ["LEAKSHIM_DEPTH": "16"])
        XCTAssertEqual(run.info.maxDepth, 16)
        let a = try XCTUnwrap(run.allocs(at: try run.value("p")).first { $0.size == 999 })
        guard case .local(let id) = a.stack else { return XCTFail("no stack") }
        let truncated = run.events.contains { if case .stack(let d) = $0 { return d.id == id && d.truncated && d.frames.count == 16 } else { return false } }
        XCTAssertTrue(truncated, "a 16-frame stack marked truncated")
        XCTAssertGreaterThanOrEqual(run.counters.truncatedStacks, 1)
    }

    /// An app that closes every descriptor (daemons do) still has the ring mapped: the collector finds it
    /// through /proc/PID/map_files (as root, which these tests run as) and attaches.
    func testRingIsFoundThroughMapFilesWhenTheAppClosedItsDescriptors() throws {
        guard geteuid() == 0 else { throw XCTSkip("map_files needs root") }
        let program = try CProgram.build("closer", source: CSnippets.handshake + """
            #include <stdlib.h>
            #include <sys/syscall.h>
            __attribute__((noinline)) void *site(size_t n) { return malloc(n); }
            int main(int argc, char **argv) {
                (void)argc;
                free(site(1));
                syscall(SYS_close_range, 3u, ~0u, 0u);
                write_pid(argv[1]);
                wait_for_file(argv[2]);
                printf("late %p\\n", site(8888));
                return 0;
            }
            """)
        let proc = try HandshakeProcess(program, environment: try Shim.environment(["LEAKSHIM_COLLECTOR_PID": nil]))
        let pid = try proc.pid()
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        let links = fds.map { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) ?? "?" }
        XCTAssertFalse(links.contains(RingMapping.linkName), "the ring descriptor is closed: \(links)")
        let ring = try RingMapping.open(pid: pid)
        XCTAssertEqual(ring.ringPID, pid)
        let reader = RingReader(mapping: ring)
        try reader.attach(mode: .attach)
        let events = try proc.goAndCollect(reader)
        let run = ShimRun(pid: pid, events: events, stdout: proc.finish(), stderr: "", status: proc.process.terminationStatus,
                          counters: reader.counters, info: reader.info, unreadableBytes: 0)
        let late = try run.value("late")
        XCTAssertTrue(events.contains { if case .alloc(let a) = $0 { return a.address == late && a.size == 8888 } else { return false } })
    }

    /// fork while other threads allocate, from fresh call sites (new stacks, module rescans): no child hangs
    /// on a lock a vanished thread held, every child allocates and exits, and the parent's ring is whole.
    func testForkWhileOtherThreadsAllocateNeverDeadlocks() throws {
        let program = try CProgram.build("forkstorm", source: """
            #include <pthread.h>
            #include <stdatomic.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <sys/wait.h>
            #include <unistd.h>
            static atomic_int stop;
            __attribute__((noinline)) static void *deep(int n, size_t size) { return n ? deep(n - 1, size) : malloc(size); }
            static void *churn(void *arg) {
                unsigned seed = (unsigned)(long)arg;
                while (!atomic_load(&stop)) free(deep(rand_r(&seed) % 40, 16 + rand_r(&seed) % 256));
                return NULL;
            }
            int main(void) {
                pthread_t t[2];
                for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, (void *)(i + 1));
                int ok = 0;
                for (int i = 0; i < 40; i++) {
                    pid_t c = fork();
                    if (c == 0) {
                        void *p = deep(i % 7, 1000 + i);
                        free(p);
                        _exit(p ? 0 : 1);
                    }
                    int st = 0;
                    if (waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
                }
                atomic_store(&stop, 1);
                for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
                printf("children_ok %d\\n", ok);
                return 0;
            }
            """)
        let run = try Shim.run(program.path, timeout: .seconds(60))
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try run.value("children_ok"), 40)
        XCTAssertFalse(run.allocs.contains { (1000..<1040).contains($0.size) }, "a child wrote into the parent's ring")
        XCTAssertGreaterThan(run.allocs.count, 1000)
        XCTAssertEqual(run.counters.lostEvents, 0)
        XCTAssertEqual(run.unreadableBytes, 0)
    }
}
