import CollectionRunner
import ShimSource
import Tracking
import Foundation
import Glibc
import TestSupport
import XCTest

/// Where the shim's walks may read, without calling anything that can allocate or take a libc lock from
/// inside a wrapper (issue 12, section 0: the JVM deadlocked under LEAKSHIM_UNWIND=fp because the walk
/// called pthread_getattr_np from the realloc that pthread_getattr_np itself makes holding the thread's
/// lock). Every unwind mode runs each program.
final class ShimStackBoundsTests: XCTestCase {
    static let modes: [String?] = [nil, "fp", "libunwind", "compare"]

    /// Threads calling pthread_getattr_np (which reallocs under its own lock) over and over: from threads
    /// started through the shim's pthread_create, from one with a stack of its own (pthread_attr_setstack),
    /// from one started through libc's pthread_create directly (its bounds come from /proc/self/maps), and
    /// from the main thread. Nothing deadlocks, and each thread's marker allocation names its callers.
    func testPthreadGetattrFromManyThreadsUnderEveryUnwindMode() throws {
        let program = try CProgram.build("getattr", source: """
            #define _GNU_SOURCE
            #include <dlfcn.h>
            #include <pthread.h>
            #include <stdio.h>
            #include <stdlib.h>
            #define NOI __attribute__((noinline))
            #define THREADS 10
            static void *marker[THREADS + 1];
            NOI void *thread_alloc(size_t n) { return malloc(n); }
            NOI void getattr_loop(long id) {
                for (int i = 0; i < 300; i++) {
                    pthread_attr_t a;
                    void *addr;
                    size_t size;
                    if (pthread_getattr_np(pthread_self(), &a) != 0) abort();
                    if (pthread_attr_getstack(&a, &addr, &size) != 0 || size == 0) abort();
                    pthread_attr_destroy(&a);
                    free(thread_alloc(100 + (size_t)id));
                }
            }
            NOI void *worker(void *arg) {
                long id = (long)arg;
                getattr_loop(id);
                marker[id] = thread_alloc(7000 + (size_t)id);
                return NULL;
            }
            #define FN(f) printf("fn " #f " %p\\n", (void *)f)
            int main(void) {
                FN(thread_alloc); FN(getattr_loop); FN(worker); FN(main);
                pthread_t t[THREADS];
                for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, worker, (void *)i);
                pthread_attr_t own;                      /* a stack the program owns */
                pthread_attr_init(&own);
                size_t size = 1 << 20;
                pthread_attr_setstack(&own, malloc(size), size);
                pthread_create(&t[8], &own, worker, (void *)8L);
                /* libc's own pthread_create, past the shim's: no trampoline took this thread's bounds */
                void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
                int (*libc_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
                    (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(libc, "pthread_create");
                if (!libc_create || libc_create(&t[9], NULL, worker, (void *)9L) != 0) return 2;
                getattr_loop(THREADS);
                marker[THREADS] = thread_alloc(7000 + THREADS);
                for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
                printf("done\\n");
                return 0;
            }
            """, extraFlags: ["-ldl"])
        for mode in Self.modes {
            let run = try Shim.run(program.path, environment: ["LEAKSHIM_UNWIND": mode], timeout: .seconds(60))
            XCTAssertEqual(run.status, 0, "LEAKSHIM_UNWIND=\(mode ?? "") " + run.stderr)
            XCTAssertTrue(run.stdout.contains("done"))
            XCTAssertEqual(run.counters.lostEvents, 0)
            var n = FrameNames()
            try n.add(program, run)
            for id in 0...10 {
                let names = n.stack(run, size: UInt64(7000 + id))
                XCTAssertEqual(Array(names.prefix(2)), ["thread_alloc", id == 10 ? "main" : "worker"],
                               "thread \(id), LEAKSHIM_UNWIND=\(mode ?? ""): \(names)")
            }
            if mode == "compare" { XCTAssertEqual(run.counters.unwindMismatches, 0) }
            if mode == nil { XCTAssertEqual(run.counters.unwindFallbacks, 0, "every thread's stack was bounded") }
        }
    }

    /// `java -version` under the shim, in every unwind mode: it returns, exits 0, and every record arrived.
    /// (Under LEAKSHIM_UNWIND=fp it used to hang at start-up: the deadlock above.)
    func testJavaStartsUnderEveryUnwindMode() throws {
        guard let java = ["/usr/bin/java", "/usr/lib/jvm/default-java/bin/java"].first(where: {
            FileManager.default.isExecutableFile(atPath: $0)
        }) else {
            throw XCTSkip("no java: tools/setup.sh installs openjdk-17-jre-headless")
        }
        for mode in Self.modes {
            let run = try Shim.run(java, arguments: ["-version"], environment: ["LEAKSHIM_UNWIND": mode], timeout: .seconds(60))
            XCTAssertEqual(run.status, 0, "LEAKSHIM_UNWIND=\(mode ?? "") " + run.stderr)
            XCTAssertTrue(run.stderr.contains("version \""), run.stderr)
            XCTAssertEqual(run.counters.lostEvents, 0)
            XCTAssertGreaterThan(run.allocs.count, 1000, "the JVM's start-up allocations were seen")
            if mode == "compare" { XCTAssertEqual(run.counters.unwindMismatches, 0) }
        }
    }
}
