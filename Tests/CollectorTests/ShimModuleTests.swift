import CollectionRunner
import ShimSource
import Tracking
import Foundation
import Glibc
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// Module records for a library loaded with dlopen (noticed when it allocates) and unloaded with dlclose.
final class ShimModuleTests: XCTestCase {
    func testDlopenedLibraryIsReportedBeforeItsStacksAndUnloadedAfterDlclose() throws {
        let lib = try CProgram.build("plug", source: """
            #include <stdlib.h>
            __attribute__((noinline)) void *plug_alloc(size_t n) { return malloc(n); }
            """, sharedObject: true)
        let program = try CProgram.build("loader", source: """
            #include <dlfcn.h>
            #include <stdio.h>
            #include <stdlib.h>
            int main(int argc, char **argv) {
                (void)argc;
                void *h = dlopen(argv[1], RTLD_NOW);
                if (!h) { fprintf(stderr, "%s\\n", dlerror()); return 1; }
                void *(*plug_alloc)(size_t) = (void *(*)(size_t))dlsym(h, "plug_alloc");
                printf("plug_alloc %p\\n", (void *)plug_alloc);
                void *p = plug_alloc(4321);
                printf("plugged %p\\n", p);
                dlclose(h);
                void *q = malloc(1234);
                printf("after %p\\n", q);
                free(p);
                free(q);
                return 0;
            }
            """, extraFlags: ["-ldl"])
        let run = try Shim.run(program.path, arguments: [lib.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let plugAlloc = try run.value("plug_alloc")
        let p = try run.value("plugged")

        let moduleIndex = run.events.firstIndex { if case .module(let m) = $0 { return m.path == lib.path } else { return false } }
        let mi = try XCTUnwrap(moduleIndex, "no module record for \(lib.path)")
        guard case .module(let module) = run.events[mi] else { return XCTFail() }
        XCTAssertTrue(module.lo <= plugAlloc && plugAlloc < module.hi)
        XCTAssertEqual(module.lo & 0xfff, 0, "the library's first PT_LOAD starts at vaddr 0")
        XCTAssertEqual(module.bias, module.lo)
        let readelf = try Run.capture(["/usr/bin/env", "readelf", "-n", lib.path]).stdout
        let hex = readelf.split(separator: "\n").first { $0.contains("Build ID:") }?.split(separator: " ").last.map(String.init)
        XCTAssertNotNil(hex)
        XCTAssertEqual(module.buildID.map { String(format: "%02x", $0) }.joined(), hex)

        let allocIndex = run.events.firstIndex { if case .alloc(let a) = $0 { return a.address == p && a.size == 4321 } else { return false } }
        let ai = try XCTUnwrap(allocIndex)
        guard case .alloc(let a) = run.events[ai], case .local(let id) = a.stack else { return XCTFail("no stack") }
        let stackIndex = try XCTUnwrap(run.events.firstIndex { if case .stack(let d) = $0 { return d.id == id } else { return false } })
        XCTAssertLessThan(mi, stackIndex, "the module record precedes the stack whose frame lies in it")
        XCTAssertLessThan(stackIndex, ai)
        let frames = run.frames(of: a)
        XCTAssertTrue(module.lo <= (frames.first ?? 0) && (frames.first ?? 0) < module.hi, "frame 0 is in plug_alloc")

        let unloadIndex = run.events.firstIndex(of: .moduleUnload(id: module.id, time: 0))
        let ui = try XCTUnwrap(unloadIndex, "no unload record after dlclose")
        XCTAssertLessThan(ai, ui)
        let after = try run.value("after")
        let lateAlloc = run.events.firstIndex { if case .alloc(let x) = $0 { return x.address == after && x.size == 1234 } else { return false } }
        XCTAssertLessThan(ui, try XCTUnwrap(lateAlloc), "the unload is recorded when dlclose returns")
    }

    /// After dlclose the same call site gets a new stack id: a library loaded later at the same addresses
    /// must not inherit the old stacks.
    func testStackIdsChangeAcrossDlclose() throws {
        let lib = try CProgram.build("plug2", source: """
            #include <stdlib.h>
            __attribute__((noinline)) void *plug_alloc(size_t n) { return malloc(n); }
            """, sharedObject: true)
        let program = try CProgram.build("reloader", source: """
            #include <dlfcn.h>
            #include <stdio.h>
            #include <stdlib.h>
            __attribute__((noinline)) void *site(size_t n) { return malloc(n); }
            int main(int argc, char **argv) {
                (void)argc;
                void *v[3];
                for (int i = 0; i < 3; i++) {
                    if (i == 2) dlclose(dlopen(argv[1], RTLD_NOW));
                    v[i] = site(5001 + i); /* one call site, so one stack, until the dlclose */
                }
                printf("a %p\\nb %p\\nc %p\\n", v[0], v[1], v[2]);
                return 0;
            }
            """, extraFlags: ["-ldl"])
        let run = try Shim.run(program.path, arguments: [lib.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        func stack(_ label: String, _ size: UInt64) throws -> StackRef {
            let v = try run.value(label)
            return try XCTUnwrap(run.allocs(at: v).first { $0.size == size }).stack
        }
        let a = try stack("a", 5001), b = try stack("b", 5002), c = try stack("c", 5003)
        XCTAssertNotEqual(a, .none)
        XCTAssertEqual(a, b, "one call site, one stack id")
        XCTAssertNotEqual(a, c, "after dlclose the same frames get a fresh id")
        if case .local(let ia) = a, case .local(let ic) = c { XCTAssertEqual(run.stacks[ia], run.stacks[ic]) } else { XCTFail() }
    }

    /// A library the program links against is initialized before the preloaded shim: what its constructor
    /// allocates is recorded all the same (the shim initializes on its first call), with its call site.
    func testAllocationInAConstructorThatRunsBeforeTheShimsIsRecorded() throws {
        let lib = try CProgram.build("early", source: """
            #include <stdio.h>
            #include <stdlib.h>
            void *early_block;
            __attribute__((noinline)) void *early_site(void) { return malloc(5555); }
            __attribute__((constructor)) static void early_init(void) { early_block = early_site(); }
            """, sharedObject: true)
        let program = try CProgram.build("earlymain", source: """
            #include <stdio.h>
            extern void *early_block;
            void *early_site(void);
            int main(void) { printf("early %p\\nearly_site %p\\n", early_block, (void *)early_site); return 0; }
            """, extraFlags: [lib.path, "-Wl,-rpath,\(lib.directory.path)"])
        // The loader's own account of the order, so this test knows it checks what it says.
        let order = try Run.capture([program.path], environment: try Shim.environment(["LD_DEBUG": "files", "LEAKSHIM_COLLECTOR_PID": nil])).stderr.split(separator: "\n").filter { $0.contains("calling init") }
        let libAt = order.firstIndex { $0.hasSuffix(lib.path) || $0.hasSuffix("libearly.so") }
        let shimAt = order.firstIndex { $0.hasSuffix("libleakshim.so") }
        XCTAssertLessThan(try XCTUnwrap(libAt, "\(order)"), try XCTUnwrap(shimAt, "\(order)"))

        let run = try Shim.run(program.path)
        XCTAssertEqual(run.status, 0, run.stderr)
        let block = try run.value("early"), site = try run.value("early_site")
        let found = run.allocs(at: block).filter { $0.size == 5555 }
        XCTAssertEqual(found.count, 1)
        let frame = run.frames(of: try XCTUnwrap(found.first)).first ?? 0
        XCTAssertTrue(site < frame && frame < site + 64, "frame 0 0x\(String(frame, radix: 16)) is not in early_site")
    }
}
