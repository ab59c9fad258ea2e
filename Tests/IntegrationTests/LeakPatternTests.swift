import Foundation
import LeakReport
import TestSupport
import XCTest

/// The leak shapes people meet on call, each in a real program, each asserted to the byte.
class LeakPatternTests: XCTestCase {
    func testReallocChainsChargeTheLastRealloc() throws {
        let prog = try CProgram.build(
            "realloc_chain",
            source: """
                #include <stdlib.h>
                char *grow(void) {
                    char *p = malloc(10);
                    for (int i = 1; i <= 5; i++) p = realloc(p, 10 + i * 100); // RC-GROW
                    return p;
                }
                char *shrink(void) {
                    char *p = malloc(4000);
                    return realloc(p, 100); // RC-SHRINK
                }
                void released(void) {
                    char *p = malloc(5);
                    for (int i = 0; i < 100; i++) p = realloc(p, 5 + i * 33);
                    free(p);
                }
                static char *keep[2];
                int main(void) { keep[0] = grow(); keep[1] = shrink(); released(); return 0; }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "grow", bytes: 510, blocks: 1, program: prog, marker: "RC-GROW")
        assertLeak(report, function: "shrink", bytes: 100, blocks: 1, program: prog, marker: "RC-SHRINK")
        XCTAssertNil(report.stack(function: "released"))
        XCTAssertEqual(report.counters?["missed_frees"] ?? 0, 0)
    }

    func testCrossThreadFreesKeepOnlyTheRealLeak() throws {
        // Producers allocate, a consumer frees, so freed addresses are reused at once by other threads:
        // a free seen after the reuse would delete a live block, or leave a dead one behind.
        let prog = try CProgram.build(
            "cross_thread",
            source: """
                #include <pthread.h>
                #include <stdlib.h>
                #define PRODUCERS 3
                #define PER_PRODUCER 20000
                #define RING 1024
                static void *queue[RING];
                static unsigned head, tail;
                static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
                static pthread_cond_t nonempty = PTHREAD_COND_INITIALIZER, nonfull = PTHREAD_COND_INITIALIZER;
                static void push(void *p) {
                    pthread_mutex_lock(&mu);
                    while (head - tail == RING) pthread_cond_wait(&nonfull, &mu);
                    queue[head++ % RING] = p;
                    pthread_cond_signal(&nonempty);
                    pthread_mutex_unlock(&mu);
                }
                static void *pop(void) {
                    pthread_mutex_lock(&mu);
                    while (head == tail) pthread_cond_wait(&nonempty, &mu);
                    void *p = queue[tail++ % RING];
                    pthread_cond_signal(&nonfull);
                    pthread_mutex_unlock(&mu);
                    return p;
                }
                static void *produce(void *arg) {
                    (void)arg;
                    for (int i = 0; i < PER_PRODUCER; i++) push(malloc(16 + (i % 64) * 8));
                    return NULL;
                }
                static void *keep[100];
                void *keep_some(int i) { return keep[i] = malloc(48); } // XT-KEEP
                static void *consume(void *arg) {
                    (void)arg;
                    for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++) {
                        free(pop());
                        if (i % 600 == 0) keep_some(i / 600);
                    }
                    return NULL;
                }
                int main(void) {
                    pthread_t p[PRODUCERS], c;
                    pthread_create(&c, NULL, consume, NULL);
                    for (int i = 0; i < PRODUCERS; i++) pthread_create(&p[i], NULL, produce, NULL);
                    for (int i = 0; i < PRODUCERS; i++) pthread_join(p[i], NULL);
                    pthread_join(c, NULL);
                    return 0;
                }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        XCTAssertEqual(report.totals.lostEvents, 0)
        assertLeak(report, function: "keep_some", bytes: 100 * 48, blocks: 100, program: prog, marker: "XT-KEEP")
        XCTAssertNil(report.stack(function: "produce"), "every produced block was freed by the consumer")
        XCTAssertEqual(report.counters?["missed_frees"] ?? 0, 0)
    }

    func testThreadStacksThatAreNeverUnmappedAndARegionUnmappedInPieces() throws {
        let prog = try CProgram.build(
            "thread_stacks",
            source: """
                #define _GNU_SOURCE
                #include <pthread.h>
                #include <sys/mman.h>
                #define STACK (64 * 1024)
                static void *work(void *arg) { return arg; }
                void spawn_with_own_stack(void) {
                    void *stack = mmap(0, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0); // TS-MMAP
                    pthread_attr_t a;
                    pthread_attr_init(&a);
                    pthread_attr_setstack(&a, stack, STACK);
                    pthread_t t;
                    pthread_create(&t, &a, work, 0);
                    pthread_join(t, 0);
                    pthread_attr_destroy(&a);
                }
                void carve(void) {
                    char *r = mmap(0, 8 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); // TS-CARVE
                    munmap(r + 2 * 4096, 4096);
                    munmap(r + 5 * 4096, 2 * 4096);
                }
                void tidy(void) {
                    char *r = mmap(0, 6 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                    munmap(r + 4096, 4096);
                    munmap(r, 4096);
                    munmap(r + 2 * 4096, 4 * 4096);
                }
                int main(void) {
                    for (int i = 0; i < 10; i++) spawn_with_own_stack();
                    carve();
                    tidy();
                    return 0;
                }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session, ["--kind", "mmap"])
        assertLeak(report, function: "spawn_with_own_stack", bytes: 10 * 65536, blocks: 10, kind: "mmap", program: prog, marker: "TS-MMAP")
        // Pages 0-1, 3-4 and 7 remain: three pieces.
        assertLeak(report, function: "carve", bytes: 5 * 4096, blocks: 3, kind: "mmap", program: prog, marker: "TS-CARVE")
        XCTAssertNil(report.stack(function: "tidy", kind: "mmap"))
        XCTAssertTrue(report.stacks.allSatisfy { $0.kind == "mmap" })
    }

    func testCppNewShowsTheCallerOfNew() throws {
        let prog = try CProgram.build(
            "cpp_new",
            source: """
                #include <vector>
                #include <string>
                struct Node { char payload[120]; Node *next; };
                Node *build_list(int n) {
                    Node *head = nullptr;
                    for (int i = 0; i < n; i++) { Node *x = new Node(); x->next = head; head = x; } // NEW-NODE
                    return head;
                }
                int *make_array() { return new int[250]; } // NEW-ARRAY
                void tidy() {
                    Node *l = build_list(5);
                    while (l) { Node *n = l->next; delete l; l = n; }
                    std::vector<std::string> v;
                    for (int i = 0; i < 100; i++) v.push_back(std::string(40, 'x'));
                    delete[] make_array();
                }
                static Node *keep_list; static int *keep_array;
                int main() { tidy(); keep_list = build_list(10); keep_array = make_array(); return 0; }
                """, language: "c++")
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "build_list(int)", bytes: 1280, blocks: 10, program: prog, marker: "NEW-NODE")
        assertLeak(report, function: "make_array()", bytes: 1000, blocks: 1, program: prog, marker: "NEW-ARRAY")
        // operator new itself sits above the user's frame, demangled.
        let frames = report.stack(function: "build_list(int)")?.frames.compactMap(\.function) ?? []
        XCTAssertTrue(frames.first?.hasPrefix("operator new") ?? false, "\(frames)")
        XCTAssertNil(report.stack(function: "tidy()"))
    }

    func testOneMebibytePerIterationThroughAHelper() throws {
        let prog = try CProgram.build(
            "helper_leak",
            source: """
                #include <stdlib.h>
                #include <string.h>
                static void *get_buffer(size_t n) { return malloc(n); } // HL-MALLOC
                void process_request(int i) {
                    char *b = get_buffer(1 << 20); // HL-CALL
                    memset(b, i, 1 << 20);
                }
                int main(void) { for (int i = 0; i < 16; i++) process_request(i); return 0; }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        assertLeak(report, function: "get_buffer", bytes: 16 << 20, blocks: 16, program: prog, marker: "HL-MALLOC")
        let frames = try XCTUnwrap(report.stack(function: "get_buffer")?.frames)
        XCTAssertEqual(frames.dropFirst().first?.function, "process_request")
        XCTAssertEqual(frames.dropFirst().first?.line, try prog.line(of: "HL-CALL"))
        XCTAssertEqual(frames.dropFirst(2).first?.function, "main")
        // And it is the top stack of the text report, printed the memleak way.
        let text = try Pipeline.text(run.session, ["--top", "1"])
        XCTAssertTrue(text.contains("\t16777216 bytes in 16 allocations from stack\n"), text)
        XCTAssertTrue(text.contains(" get_buffer+0x"), text)
        XCTAssertTrue(text.contains("[helper_leak] \(prog.sourcePath):\(try prog.line(of: "HL-MALLOC"))\n"), text)
    }
}
