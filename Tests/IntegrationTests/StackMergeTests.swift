import Foundation
import LeakReport
import TestSupport
import XCTest

/// One leak site is one stack to the reader, however many addresses its library was loaded at.
final class StackMergeTests: XCTestCase {
    func testALibraryReloadedAtNewAddressesLeaksFromOneStack() throws {
        let lib = try CProgram.build(
            "reloaded",
            source: """
                #include <stdlib.h>
                void *plugin_leak(void) {
                    return malloc(48); // PLUGIN-LEAK
                }
                """, sharedObject: true)
        // After each dlclose the program reserves the address range the library had, so the next
        // dlopen must place it somewhere else: each load is a new module, each stack a new stack.
        let prog = try CProgram.build(
            "reloader",
            source: """
                #define _GNU_SOURCE
                #include <dlfcn.h>
                #include <stdio.h>
                #include <sys/mman.h>
                int main(int argc, char **argv) {
                    int loads = 0;
                    void *last = NULL;
                    for (int i = 0; i < 40; i++) {
                        void *h = dlopen(argv[1], RTLD_NOW);
                        if (!h) return 1;
                        void *(*leak)(void) = (void *(*)(void))dlsym(h, "plugin_leak");
                        Dl_info info;
                        if (!leak || !dladdr((void *)leak, &info)) return 2;
                        if (info.dli_fbase != last) loads++;
                        last = info.dli_fbase;
                        leak(); // CALL
                        dlclose(h);
                        mmap(info.dli_fbase, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
                    }
                    fprintf(stderr, "distinct_bases=%d\\n", loads);
                    return 0;
                }
                """, extraFlags: ["-ldl"])
        let c = try Pipeline.collect(prog, [lib.path])
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        XCTAssertTrue(c.result.stderr.contains("distinct_bases=40"), "every load at a new address: \(c.result.stderr)")
        let report = try Pipeline.top(c.session)
        let stacks = report.stacks.filter { $0.frames.first?.function == "plugin_leak" }
        XCTAssertEqual(stacks.count, 1, "one stack for one leak site: \(stacks.map(\.blocks))")
        let s = try XCTUnwrap(stacks.first)
        XCTAssertEqual(s.blocks, 40)
        XCTAssertEqual(s.bytes, 40 * 48)
        XCTAssertEqual(s.mergedStackIDs?.count, 39)
        XCTAssertEqual(s.frames.first?.line, try lib.line(of: "PLUGIN-LEAK"))
        XCTAssertEqual(s.frames.first { $0.function == "main" }?.line, try prog.line(of: "CALL"))
        // --addresses lists every block of the merged stacks.
        let withBlocks = try Pipeline.top(c.session, ["--addresses"])
        XCTAssertEqual(withBlocks.stacks.first { $0.frames.first?.function == "plugin_leak" }?.addresses?.count, 40)
        let text = try Pipeline.text(c.session)
        XCTAssertTrue(text.contains("\t1920 bytes in 40 allocations from stack\n"), text)
    }
}
