import CollectionRunner
import ShimSource
import Tracking
import Foundation
import Glibc
import TestSupport
import XCTest

/// Names the frames of a run's allocations after the functions they fall in.
struct FrameNames {
    /// Function name -> runtime range, over every binary the run printed addresses for.
    var ranges: [String: Range<UInt64>] = [:]

    /// Adds the functions a run printed as "LABEL NAME 0xADDR" lines, sized with `nm -S` of `binary`.
    mutating func add(_ binary: CProgram, _ run: ShimRun, label: String = "fn") throws {
        let nm = try Run.capture(["/usr/bin/env", "nm", "-S", binary.path])
        var sizes: [String: UInt64] = [:]
        for line in nm.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 4, let size = UInt64(f[1], radix: 16) { sizes[String(f[3])] = size }
        }
        for line in run.stdout.split(separator: "\n") where line.hasPrefix(label + " ") {
            let f = line.split(separator: " ")
            guard f.count == 3, f[2].hasPrefix("0x"), let addr = UInt64(f[2].dropFirst(2), radix: 16),
                let size = sizes[String(f[1])]
            else { throw TestSupportError("bad \(label) line or no nm size: \(line)") }
            ranges[String(f[1])] = addr..<(addr + size)
        }
    }

    /// The function each frame lies in, "?" for frames outside the named ones (libc, libstdc++, ...).
    func names(_ frames: [UInt64]) -> [String] {
        frames.map { ip in ranges.first { $0.value.contains(ip) }?.key ?? "?" }
    }

    /// The frames of the one allocation of `size` in `run`, named.
    func stack(_ run: ShimRun, size: UInt64, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let found = run.allocs.filter { $0.size == size }
        XCTAssertEqual(found.count, 1, "allocations of \(size) bytes", file: file, line: line)
        return found.first.map { names(run.frames(of: $0)) } ?? []
    }
}

/// `names` starts with `prefix`, then (when `others`) some frames outside the program ("?"), then `rest`.
func assertChain(_ names: [String], _ prefix: [String], through others: Bool, then rest: [String],
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(Array(names.prefix(prefix.count)), prefix, "\(names)", file: file, line: line)
    if rest.isEmpty { return }
    var i = prefix.count
    let skipped = names[i...].prefix { $0 == "?" }.count
    if others { XCTAssertGreaterThan(skipped, 0, "no library frames between: \(names)", file: file, line: line) }
    else { XCTAssertEqual(skipped, 0, "\(names)", file: file, line: line) }
    i += skipped
    XCTAssertEqual(Array(names[min(i, names.count)...].prefix(rest.count)), rest, "\(names)", file: file, line: line)
}

/// Every path of the shim's unwinder against real compiled programs: frame-pointer code, code without frame
/// pointers (the DWARF rules), calls through libc and libstdc++ (built without frame pointers), realigned
/// stacks, signal frames on the thread's stack and on sigaltstack, stacks it cannot bound (handed to
/// libunwind), and the rule cache across dlclose and a reload. LEAKSHIM_UNWIND=compare runs libunwind's walk
/// next to ours on every allocation and counts any difference.
final class ShimUnwindTests: XCTestCase {
    /// Runs `program` with the default walk and with LEAKSHIM_UNWIND=compare, checks what every run must show
    /// (exit 0, libunwind agreeing, no stack handed to libunwind, nothing lost), then hands each run and its
    /// named frames to `check`.
    func runBothWalks(_ program: CProgram, file: StaticString = #filePath, line: UInt = #line,
                      _ check: (ShimRun, FrameNames) throws -> Void) throws {
        for mode in [nil, "compare"] {
            let run = try Shim.run(program.path, environment: ["LEAKSHIM_UNWIND": mode])
            XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
            var n = FrameNames()
            try n.add(program, run)
            try check(run, n)
            XCTAssertEqual(run.counters.unwindMismatches, 0, "LEAKSHIM_UNWIND=\(mode ?? "")", file: file, line: line)
            XCTAssertEqual(run.counters.unwindFallbacks, 0, "every stack here is one the shim's walk takes", file: file, line: line)
            XCTAssertEqual(run.counters.lostEvents, 0, file: file, line: line)
        }
    }

    static let chainSource = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #define NOI __attribute__((noinline))
        static volatile int sink;
        NOI void *c_fn(size_t n) { volatile char pad[300]; pad[0] = 1; void *p = malloc(n); sink = pad[0]; return p; }
        NOI void *b_fn(size_t n) { void *p = c_fn(n); sink++; return p; }
        NOI void *a_fn(size_t n) { volatile char pad[40]; pad[3] = 2; void *p = b_fn(n); sink = pad[3]; return p; }
        /* a 64-byte aligned local makes GCC realign the stack: CFA = *(rbp - 8) */
        NOI void *aligned_fn(size_t n) {
            char buf[64] __attribute__((aligned(64)));
            memset(buf, (int)n, sizeof buf);
            void *p = malloc(n);
            sink = buf[5];
            return p;
        }
        NOI char *dup_site(const char *s) { char *p = strdup(s); sink++; return p; } /* s: not a constant GCC sees */
        static void *in_cmp;
        NOI int cmp(const void *x, const void *y) {
            if (!in_cmp) in_cmp = malloc(5151);
            return *(const int *)x - *(const int *)y;
        }
        NOI void sort_site(int *v, int n) { qsort(v, (size_t)n, sizeof *v, cmp); sink++; }
        #define FN(f) printf("fn " #f " %p\\n", (void *)f)
        int main(void) {
            FN(c_fn); FN(b_fn); FN(a_fn); FN(aligned_fn); FN(dup_site); FN(cmp); FN(sort_site); FN(main);
            void *p = a_fn(4242);
            void *q = aligned_fn(4343);
            char *d = dup_site("0123456789abcdefghijklmnopqrstuvwxyz"); /* strdup: 36 + 1 bytes */
            int v[64];
            for (int i = 0; i < 64; i++) v[i] = (i * 37) % 64;
            sort_site(v, 64);
            printf("sorted %d %d %zu\\n", v[0], v[63], strlen(d) + 1);
            free(p); free(q); free(d); free(in_cmp);
            return 0;
        }
        """

    /// Built with or without frame pointers, at -O2, every allocation names its callers up to main,
    /// through libc's strdup and qsort, and through a realigned frame; libunwind agrees on every stack.
    func checkChain(framePointers: Bool) throws {
        let flags = ["-O2", framePointers ? "-fno-omit-frame-pointer" : "-fomit-frame-pointer"]
        let program = try CProgram.build(framePointers ? "chain-fp" : "chain-nofp", source: Self.chainSource, extraFlags: flags)
        // The build is what it says: a_fn, b_fn and c_fn set up rbp as a frame pointer, or none of them does.
        for f in ["a_fn", "b_fn", "c_fn"] {
            let asm = try Run.capture(["/usr/bin/env", "objdump", "-d", "--disassemble=\(f)", program.path]).stdout
            XCTAssertEqual(asm.contains("mov    %rsp,%rbp"), framePointers, "\(f):\n\(asm)")
        }
        try runBothWalks(program) { run, n in
            XCTAssertTrue(run.stdout.contains("sorted 0 63 37"), run.stdout)
            assertChain(n.stack(run, size: 4242), ["c_fn", "b_fn", "a_fn", "main"], through: false, then: [])
            assertChain(n.stack(run, size: 4343), ["aligned_fn", "main"], through: false, then: [])
            assertChain(n.stack(run, size: 37), [], through: true, then: ["dup_site", "main"])
            assertChain(n.stack(run, size: 5151), ["cmp"], through: true, then: ["sort_site", "main"])
        }
    }

    func testFramePointerBuildGivesEveryCaller() throws { try checkChain(framePointers: true) }

    func testBuildWithoutFramePointersGivesEveryCaller() throws {
        try checkChain(framePointers: false)
    }

    /// C++ through libstdc++ (operator new, std::string's constructor, std::vector's growth): the program's
    /// own callers follow the library's frames.
    func testCallersThroughLibstdcxx() throws {
        let program = try CProgram.build("cxxchain", source: """
            #include <cstdio>
            #include <string>
            #include <vector>
            #define NOI __attribute__((noinline))
            extern "C" NOI std::string *make_string() { return new std::string(5000, 'x'); } // plain names for nm
            extern "C" NOI void grow(std::vector<long> &v) { for (int i = 0; i < 700; i++) v.push_back(i); }
            #define FN(f) std::printf("fn " #f " %p\\n", (void *)&f)
            int main() {
                FN(make_string); FN(grow); FN(main);
                std::string *s = make_string();
                std::vector<long> v;
                grow(v);
                std::printf("sizes %zu %zu\\n", s->size(), v.size());
                delete s;
                return 0;
            }
            """, language: "c++", extraFlags: ["-O2", "-fomit-frame-pointer"])
        try runBothWalks(program) { run, n in
            assertChain(n.stack(run, size: 5001), [], through: true, then: ["make_string", "main"])
            // 700 longs: the vector's buffer doubles up to 1024 elements
            assertChain(n.stack(run, size: 8192), [], through: true, then: ["grow", "main"])
        }
    }

    /// A handler that allocates, once on the interrupted thread's stack and once on sigaltstack: the stack
    /// reads handler, the signal trampoline, the interrupted function (its exact ip) and its caller.
    /// Compiled without frame pointers, so the interrupted function's own rule at that ip is what finds main.
    func testSignalFramesOnTheStackAndOnSigaltstack() throws {
        let program = try CProgram.build("sigframes", source: """
            #include <pthread.h>
            #include <signal.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <sys/mman.h>
            #include <unistd.h>
            #define NOI __attribute__((noinline))
            static volatile sig_atomic_t hits;
            static volatile long sink;
            static void *got[2];
            NOI void *handler_alloc(size_t n) { void *p = malloc(n); sink++; return p; }
            NOI void on_signal(int sig) { got[hits] = handler_alloc(sig == SIGUSR1 ? 6001 : 6002); hits++; }
            NOI void spin(void) { while (hits == 0) sink++; }
            NOI void spin_alt(void) { while (hits == 1) sink++; }
            static pthread_t main_thread;
            static void *kicker(void *arg) {
                (void)arg;
                usleep(20000);
                pthread_kill(main_thread, SIGUSR1);
                while (hits < 1) usleep(1000);
                pthread_kill(main_thread, SIGUSR2);
                return NULL;
            }
            #define FN(f) printf("fn " #f " %p\\n", (void *)f)
            int main(void) {
                FN(handler_alloc); FN(on_signal); FN(spin); FN(spin_alt); FN(main);
                struct sigaction sa = {0};
                sa.sa_handler = on_signal;
                sigaction(SIGUSR1, &sa, NULL);
                sa.sa_flags = SA_ONSTACK;
                sigaction(SIGUSR2, &sa, NULL);
                stack_t ss = {0};
                ss.ss_size = 1 << 16;
                ss.ss_sp = mmap(NULL, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                sigaltstack(&ss, NULL);
                main_thread = pthread_self();
                pthread_t k;
                pthread_create(&k, NULL, kicker, NULL);
                spin();
                spin_alt();
                pthread_join(k, NULL);
                printf("got %p %p\\n", got[0], got[1]);
                return 0;
            }
            """, extraFlags: ["-O2", "-fomit-frame-pointer"])
        try runBothWalks(program) { run, n in
            assertChain(n.stack(run, size: 6001), ["handler_alloc", "on_signal"], through: true, then: ["spin", "main"])
            assertChain(n.stack(run, size: 6002), ["handler_alloc", "on_signal"], through: true, then: ["spin_alt", "main"])
        }
    }

    /// A coroutine on a malloc'd stack (swapcontext): the shim cannot bound that stack, so it hands the walk
    /// to libunwind (counted), and the stack is still right.
    func testStackItCannotBoundGoesToLibunwind() throws {
        let program = try CProgram.build("coroutine", source: """
            #include <stdio.h>
            #include <stdlib.h>
            #include <ucontext.h>
            #define NOI __attribute__((noinline))
            static ucontext_t main_ctx, co_ctx;
            static void *got;
            NOI void *co_alloc(size_t n) { return malloc(n); }
            NOI void co_fn(void) { got = co_alloc(6003); }
            #define FN(f) printf("fn " #f " %p\\n", (void *)f)
            int main(void) {
                FN(co_alloc); FN(co_fn);
                size_t size = 1 << 16;
                char *stack = malloc(size);
                getcontext(&co_ctx);
                co_ctx.uc_stack.ss_sp = stack;
                co_ctx.uc_stack.ss_size = size;
                co_ctx.uc_link = &main_ctx;
                makecontext(&co_ctx, co_fn, 0);
                swapcontext(&main_ctx, &co_ctx);
                printf("got %p\\n", got);
                free(got);
                free(stack);
                return 0;
            }
            """)
        let run = try Shim.run(program.path)
        XCTAssertEqual(run.status, 0, run.stderr)
        var n = FrameNames()
        try n.add(program, run)
        assertChain(n.stack(run, size: 6003), ["co_alloc", "co_fn"], through: false, then: [])
        XCTAssertGreaterThanOrEqual(run.counters.unwindFallbacks, 1)
    }

    /// The rule cache is keyed by address: after dlclose, a library reloaded at a new address, and another
    /// one with the same code layout but different frame sizes loaded where the first one was, must not
    /// be walked with the old rules (with them, the walk stops after inner). Each allocation names inner,
    /// lib_alloc, load and main.
    func testRuleCacheAfterDlcloseAndReload() throws {
        // Same code, different frame size: the same return addresses with different CFA offsets.
        let libSource = """
            #include <stdio.h>
            #include <stdlib.h>
            #define NOI __attribute__((noinline))
            static volatile int sink;
            NOI static void *inner(size_t n) { volatile char pad[PAD]; pad[0] = 1; void *p = malloc(n); sink = pad[0]; return p; }
            NOI void *lib_alloc(size_t n) { volatile char pad[PAD]; pad[1] = 2; void *p = inner(n); sink = pad[1]; return p; }
            void lib_print(const char *label) {
                printf("%s inner %p\\n%s lib_alloc %p\\n", label, (void *)inner, label, (void *)lib_alloc);
            }
            """
        let flags = ["-O2", "-fomit-frame-pointer"]
        let libA = try CProgram.build("cachea", source: libSource, extraFlags: flags + ["-DPAD=200"], sharedObject: true)
        let libB = try CProgram.build("cacheb", source: libSource, extraFlags: flags + ["-DPAD=3000"], sharedObject: true)
        let program = try CProgram.build("reloader", source: """
            #define _GNU_SOURCE
            #include <dlfcn.h>
            #include <link.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <sys/mman.h>
            static uintptr_t lo, hi;
            static const char *want;
            static int range(struct dl_phdr_info *info, size_t size, void *arg) {
                (void)size; (void)arg;
                if (!info->dlpi_name || strcmp(info->dlpi_name, want) != 0) return 0;
                for (int i = 0; i < info->dlpi_phnum; i++) {
                    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                    if (ph->p_type != PT_LOAD) continue;
                    uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = (a + ph->p_memsz + 4095) & ~4095ul;
                    if (!lo || a < lo) lo = a;
                    if (b > hi) hi = b;
                }
                return 1;
            }
            static void *load(const char *path, const char *label, size_t n) {
                void *h = dlopen(path, RTLD_NOW);
                if (!h) { fprintf(stderr, "%s\\n", dlerror()); exit(1); }
                ((void (*)(const char *))dlsym(h, "lib_print"))(label);
                void *p = ((void *(*)(size_t))dlsym(h, "lib_alloc"))(n);
                printf("base_%s %p\\n", label, dlsym(h, "lib_alloc"));
                want = path;
                lo = hi = 0;
                dl_iterate_phdr(range, NULL);
                dlclose(h);
                return p;
            }
            int main(int argc, char **argv) {
                (void)argc;
                printf("fn main %p\\nfn load %p\\n", (void *)main, (void *)load);
                void *p1 = load(argv[1], "a1", 7101);
                uintptr_t a_lo = lo, a_hi = hi;
                /* Hold the old place so that the reload lands somewhere else. */
                void *block = mmap((void *)a_lo, a_hi - a_lo, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
                if (block == MAP_FAILED) { perror("mmap"); return 1; }
                void *p2 = load(argv[1], "a2", 7102);
                munmap(block, a_hi - a_lo);
                void *p3 = load(argv[2], "b", 7103);
                printf("b_at_old %d\\n", lo == a_lo);
                free(p1); free(p2); free(p3);
                return 0;
            }
            """, extraFlags: ["-ldl"])
        // Not under LEAKSHIM_UNWIND=libunwind: libunwind 1.6's own per-address trace cache survives
        // unw_flush_cache and walks the second library with the first one's rules (it stops after inner).
        let run = try Shim.run(program.path, arguments: [libA.path, libB.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        var n = FrameNames()
        try n.add(program, run)
        for (label, lib, size) in [("a1", libA, 7101), ("a2", libA, 7102), ("b", libB, 7103)] {
            var m = n
            try m.add(lib, run, label: label)
            assertChain(m.stack(run, size: UInt64(size)), ["inner", "lib_alloc", "load", "main"], through: false, then: [])
        }
        XCTAssertNotEqual(try run.value("base_a1"), try run.value("base_a2"), "the reload landed at a new address")
        if try run.value("b_at_old") != 1 {
            print("ShimUnwindTests: the kernel placed the second library elsewhere; its stack was still checked")
        }
        XCTAssertEqual(run.counters.unwindFallbacks, 0)
    }
}
