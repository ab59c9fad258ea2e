import Foundation
import LeakReport
import TestSupport
import XCTest

/// Every wrapped allocator entry point, in one real program: each leaks one block from its own
/// function with a known size, and the same calls made again and released leave nothing behind.
class AllocatorFunctionTests: XCTestCase {
    static let source = """
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <malloc.h>
        #include <stdint.h>
        #include <stdlib.h>
        #include <sys/mman.h>
        #include <unistd.h>

        void *leak_malloc(void) { return malloc(1001); } // AT-MALLOC
        void *leak_calloc(void) { return calloc(7, 11); } // AT-CALLOC
        void *leak_realloc_null(void) { return realloc(NULL, 1003); } // AT-REALLOC-NULL
        void *leak_reallocarray(void) { return reallocarray(NULL, 9, 13); } // AT-REALLOCARRAY
        void *leak_posix_memalign(void) { void *p = 0; return posix_memalign(&p, 64, 1005) ? 0 : p; } // AT-POSIX-MEMALIGN
        void *leak_aligned_alloc(void) { return aligned_alloc(128, 1024); } // AT-ALIGNED-ALLOC
        void *leak_memalign(void) { return memalign(256, 1007); } // AT-MEMALIGN
        void *leak_valloc(void) { return valloc(1009); } // AT-VALLOC
        void *leak_pvalloc(void) { return pvalloc(1011); } // AT-PVALLOC
        void *leak_mmap_anon(void) { return mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); } // AT-MMAP
        void *leak_mmap64(void) { return mmap64(0, 2 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); } // AT-MMAP64
        void *leak_mmap_file(const char *path) {
            int fd = open(path, O_RDONLY);
            void *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0); // AT-MMAP-FILE
            close(fd);
            return p;
        }

        static void *sink[64];
        static int n;
        static void keep(void *p) { sink[n++] = p; }

        int main(int argc, char **argv) {
            (void)argc;
            keep(leak_malloc()); keep(leak_calloc()); keep(leak_realloc_null()); keep(leak_reallocarray());
            keep(leak_posix_memalign()); keep(leak_aligned_alloc()); keep(leak_memalign()); keep(leak_valloc());
            keep(leak_pvalloc()); keep(leak_mmap_anon()); keep(leak_mmap64()); keep(leak_mmap_file(argv[0]));

            /* The same calls again, all released: none of these may show up. */
            free(malloc(50)); free(calloc(3, 3)); free(realloc(NULL, 60)); free(reallocarray(NULL, 2, 2));
            void *p = 0;
            if (posix_memalign(&p, 32, 70) == 0) free(p);
            free(aligned_alloc(64, 128)); free(memalign(64, 80)); free(valloc(90)); free(pvalloc(100));
            munmap(mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 4096);
            munmap(mmap64(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 4096);
            void *g = malloc(40);
            g = realloc(g, 0); /* glibc: frees and returns NULL */
            free(g);

            /* Failures are not allocations. */
            if (malloc(SIZE_MAX) != NULL) return 2;
            if (calloc(SIZE_MAX, 4) != NULL) return 3;
            if (posix_memalign(&p, 3, 10) != EINVAL) return 4;
            if (reallocarray(NULL, SIZE_MAX, 2) != NULL) return 5;
            if (mmap((void *)1, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) return 6;
            free(NULL);
            return 0;
        }
        """

    func testEveryAllocatorFunctionIsChargedExactlyToItsCaller() throws {
        let prog = try CProgram.build("allocators", source: Self.source)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        XCTAssertEqual(report.totals.lostEvents, 0)
        assertLeak(report, function: "leak_malloc", bytes: 1001, blocks: 1, program: prog, marker: "AT-MALLOC")
        assertLeak(report, function: "leak_calloc", bytes: 77, blocks: 1, program: prog, marker: "AT-CALLOC")
        assertLeak(report, function: "leak_realloc_null", bytes: 1003, blocks: 1, program: prog, marker: "AT-REALLOC-NULL")
        assertLeak(report, function: "leak_reallocarray", bytes: 117, blocks: 1, program: prog, marker: "AT-REALLOCARRAY")
        assertLeak(report, function: "leak_posix_memalign", bytes: 1005, blocks: 1, program: prog, marker: "AT-POSIX-MEMALIGN")
        assertLeak(report, function: "leak_aligned_alloc", bytes: 1024, blocks: 1, program: prog, marker: "AT-ALIGNED-ALLOC")
        assertLeak(report, function: "leak_memalign", bytes: 1007, blocks: 1, program: prog, marker: "AT-MEMALIGN")
        assertLeak(report, function: "leak_valloc", bytes: 1009, blocks: 1, program: prog, marker: "AT-VALLOC")
        assertLeak(report, function: "leak_pvalloc", bytes: 1011, blocks: 1, program: prog, marker: "AT-PVALLOC")
        assertLeak(report, function: "leak_mmap_anon", bytes: 3 * 4096, blocks: 1, kind: "mmap", program: prog, marker: "AT-MMAP")
        assertLeak(report, function: "leak_mmap64", bytes: 2 * 4096, blocks: 1, kind: "mmap", program: prog, marker: "AT-MMAP64")
        assertLeak(report, function: "leak_mmap_file", bytes: 4096, blocks: 1, kind: "mmap", program: prog, marker: "AT-MMAP-FILE")
        // The file mapping is told apart from anonymous ones.
        let fileBacked = try Pipeline.top(run.session, ["--kind", "mmap", "--addresses"]).stack(function: "leak_mmap_file", kind: "mmap")
        XCTAssertEqual(fileBacked?.addresses?.map(\.backing), ["file"])
        XCTAssertEqual(try Pipeline.top(run.session, ["--kind", "mmap", "--addresses"]).stack(function: "leak_mmap_anon", kind: "mmap")?.addresses?.map(\.backing), ["anon"])
        // Nothing else the program itself called is outstanding: only the twelve leaks.
        let own = report.stacks.filter { $0.userFrame?.file == prog.sourcePath }
        XCTAssertEqual(own.count, 12, "\(own.map { $0.userFrame?.function ?? "?" })")
        let heapBytes: UInt64 = 1001 + 77 + 1003 + 117 + 1005 + 1024 + 1007 + 1009 + 1011
        let mappedBytes: UInt64 = 6 * 4096
        XCTAssertEqual(own.reduce(0) { $0 + $1.bytes }, heapBytes + mappedBytes)
    }
}
