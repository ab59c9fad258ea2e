import CollectionRunner
import ShimSource
import Tracking
import Glibc
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// Every heap entry point, run for real under the shim: exact addresses, sizes, functions, call sites and
/// the order of pending frees, allocations and undos.
final class ShimHeapTests: XCTestCase {
    static let source = """
        #include <errno.h>
        #include <malloc.h>
        #include <stdint.h>
        #include <stdio.h>
        #include <stdlib.h>

        #define SITE __attribute__((noinline))
        SITE void *site_malloc(size_t n) { return malloc(n); }
        SITE void *site_calloc(size_t a, size_t b) { return calloc(a, b); }
        SITE void *site_realloc(void *p, size_t n) { return realloc(p, n); }
        SITE void *site_reallocarray(void *p, size_t a, size_t b) { return reallocarray(p, a, b); }
        SITE int site_posix_memalign(void **p, size_t al, size_t n) { return posix_memalign(p, al, n); }
        SITE void *site_aligned_alloc(size_t al, size_t n) { return aligned_alloc(al, n); }
        SITE void *site_memalign(size_t al, size_t n) { return memalign(al, n); }
        SITE void *site_valloc(size_t n) { return valloc(n); }
        SITE void *site_pvalloc(size_t n) { return pvalloc(n); }
        SITE void site_free(void *p) { free(p); }

        #define FN(f) printf("fn " #f " %p\\n", (void *)f)
        #define SHOW(label, p) printf(label " %p\\n", (void *)(p))
        int main(void) {
            FN(site_malloc); FN(site_calloc); FN(site_realloc); FN(site_reallocarray); FN(site_posix_memalign);
            FN(site_aligned_alloc); FN(site_memalign); FN(site_valloc); FN(site_pvalloc); FN(main);
            void *m = site_malloc(1001); SHOW("malloc", m);
            void *mf = site_malloc(SIZE_MAX - 4096); SHOW("malloc_fail", mf);
            void *c = site_calloc(7, 143); SHOW("calloc", c);
            void *cf = site_calloc((size_t)1 << 62, 16); SHOW("calloc_overflow", cf);
            void *r0 = site_realloc(NULL, 1002); SHOW("realloc_null", r0);
            void *r1 = site_realloc(r0, 50000); SHOW("realloc_grow", r1);
            void *r2 = site_realloc(r1, 40000); SHOW("realloc_shrink", r2);
            void *r3 = site_realloc(r2, 0); SHOW("realloc_zero", r3);
            void *rf = site_realloc(m, (size_t)1 << 62); printf("realloc_fail %p %d\\n", rf, errno == ENOMEM);
            void *ra = site_reallocarray(NULL, 10, 101); SHOW("reallocarray", ra);
            void *rb = site_reallocarray(ra, (size_t)1 << 62, 16); printf("reallocarray_overflow %p %d\\n", rb, errno == ENOMEM);
            void *rc = site_reallocarray(ra, 20, 101); SHOW("reallocarray_grow", rc);
            void *pm = NULL; int e = site_posix_memalign(&pm, 64, 1003); SHOW("posix_memalign", pm); printf("posix_memalign_rc %d\\n", e);
            void *pb = NULL; e = site_posix_memalign(&pb, 3, 1004); printf("posix_memalign_bad %d\\n", e);
            void *aa = site_aligned_alloc(128, 1024); SHOW("aligned_alloc", aa);
            void *ma = site_memalign(256, 1005); SHOW("memalign", ma);
            void *va = site_valloc(1006); SHOW("valloc", va);
            void *pv = site_pvalloc(1007); SHOW("pvalloc", pv);
            site_free(m); site_free(c); site_free(rc); site_free(pm); site_free(aa); site_free(ma); site_free(va); site_free(pv);
            site_free(NULL);
            return 0;
        }
        """

    /// One run for all tests here: the program is deterministic and the assertions only read the result.
    nonisolated(unsafe) static var cached: (CProgram, ShimRun, [String: Range<UInt64>])?

    func heapRun() throws -> (CProgram, ShimRun, [String: Range<UInt64>]) {
        if let c = Self.cached { return c }
        let program = try CProgram.build("heap", source: Self.source)
        let run = try Shim.run(program.path)
        XCTAssertEqual(run.status, 0, run.stderr)
        let c = (program, run, try Shim.functionRanges(program, run))
        Self.cached = c
        return c
    }

    /// The one allocation at `address` made by `function`, with its call site checked: the first frame is a
    /// return address inside `site` and the second inside main.
    @discardableResult
    func assertAlloc(_ run: ShimRun, _ ranges: [String: Range<UInt64>], at address: UInt64, size: UInt64,
                     function: AllocFunction, site: String, replaces: UInt64? = nil,
                     file: StaticString = #filePath, line: UInt = #line) -> Allocation? {
        XCTAssertNotEqual(address, 0, "the program got no block", file: file, line: line)
        let found = run.allocs(at: address).filter { $0.function == function && $0.size == size }
        XCTAssertEqual(found.count, 1, "\(function) at 0x\(String(address, radix: 16)): \(found)", file: file, line: line)
        guard let a = found.first else { return nil }
        XCTAssertEqual(a.size, size, file: file, line: line)
        XCTAssertEqual(a.kind, .heap, file: file, line: line)
        XCTAssertEqual(a.replaces, replaces, file: file, line: line)
        XCTAssertEqual(a.tid, UInt32(run.pid), "single-threaded: the main thread's tid is the pid", file: file, line: line)
        XCTAssertNil(a.backing, file: file, line: line)
        let frames = run.frames(of: a)
        XCTAssertGreaterThanOrEqual(frames.count, 2, file: file, line: line)
        if frames.count >= 2, let s = ranges[site], let m = ranges["main"] {
            XCTAssertTrue(s.contains(frames[0]) && frames[0] != s.lowerBound,
                          "frame 0 0x\(String(frames[0], radix: 16)) not inside \(site) \(s)", file: file, line: line)
            XCTAssertTrue(m.contains(frames[1]), "frame 1 not inside main", file: file, line: line)
        } else {
            XCTFail("no range for \(site) or main", file: file, line: line)
        }
        return a
    }

    func testMallocCallocAndTheirFailures() throws {
        let (_, run, ranges) = try heapRun()
        assertAlloc(run, ranges, at: try run.value("malloc"), size: 1001, function: .malloc, site: "site_malloc")
        assertAlloc(run, ranges, at: try run.value("calloc"), size: 1001, function: .calloc, site: "site_calloc")
        XCTAssertEqual(try run.value("malloc_fail"), 0)
        XCTAssertEqual(try run.value("calloc_overflow"), 0)
        // A failed allocation is not an allocation.
        XCTAssertEqual(run.allocs.filter { $0.address == 0 || $0.size > 1 << 40 }, [])
    }

    func testAlignedAllocators() throws {
        let (_, run, ranges) = try heapRun()
        assertAlloc(run, ranges, at: try run.value("posix_memalign"), size: 1003, function: .posixMemalign, site: "site_posix_memalign")
        XCTAssertEqual(try run.value("posix_memalign_rc"), 0)
        XCTAssertEqual(try run.value("posix_memalign_bad"), UInt64(EINVAL))
        XCTAssertEqual(run.allocs.filter { $0.size == 1004 }, [], "posix_memalign with an invalid alignment allocated nothing")
        let aa = try run.value("aligned_alloc")
        XCTAssertEqual(aa % 128, 0)
        assertAlloc(run, ranges, at: aa, size: 1024, function: .alignedAlloc, site: "site_aligned_alloc")
        assertAlloc(run, ranges, at: try run.value("memalign"), size: 1005, function: .memalign, site: "site_memalign")
        assertAlloc(run, ranges, at: try run.value("valloc"), size: 1006, function: .valloc, site: "site_valloc")
        assertAlloc(run, ranges, at: try run.value("pvalloc"), size: 1007, function: .pvalloc, site: "site_pvalloc")
    }

    /// The program's block events in exact program order, from its first malloc: realloc(NULL) is a malloc;
    /// realloc(p) is a pending free immediately followed by the allocation replacing p, even in place;
    /// realloc(p, 0) frees for good; a failed realloc undoes its pending free; a failed or overflowing call
    /// leaves no record at all; free(NULL) records nothing.
    func testExactEventSequence() throws {
        let (_, run, _) = try heapRun()
        let v = { (label: String) throws -> UInt64 in try run.value(label) }
        let m = try v("malloc"), c = try v("calloc"), r0 = try v("realloc_null"), r1 = try v("realloc_grow")
        let r2 = try v("realloc_shrink"), ra = try v("reallocarray"), rc = try v("reallocarray_grow")
        let pm = try v("posix_memalign"), aa = try v("aligned_alloc"), ma = try v("memalign"), va = try v("valloc")
        let pv = try v("pvalloc")
        XCTAssertEqual(try v("realloc_zero"), 0, "glibc frees and returns NULL")
        XCTAssertEqual(try v("realloc_fail"), 0)
        XCTAssertEqual(try v("reallocarray_overflow"), 0)
        func alloc(_ p: UInt64, _ n: UInt64, _ f: AllocFunction, _ old: UInt64? = nil) -> Event {
            .alloc(Allocation(address: p, size: n, kind: .heap, function: f, stack: .none, time: 0, replaces: old))
        }
        func free(_ p: UInt64, pending: Bool = false) -> Event { .free(address: p, kind: .heap, pending: pending) }
        let expected: [Event] = [
            alloc(m, 1001, .malloc),
            alloc(c, 1001, .calloc),
            alloc(r0, 1002, .realloc),
            free(r0, pending: true), alloc(r1, 50000, .realloc, r0),
            free(r1, pending: true), alloc(r2, 40000, .realloc, r1),
            free(r2),
            free(m, pending: true), .undo(address: m, kind: .heap),
            alloc(ra, 1010, .reallocarray),
            free(ra, pending: true), alloc(rc, 2020, .reallocarray, ra),
            alloc(pm, 1003, .posixMemalign),
            alloc(aa, 1024, .alignedAlloc),
            alloc(ma, 1005, .memalign),
            alloc(va, 1006, .valloc),
            alloc(pv, 1007, .pvalloc),
            free(m), free(c), free(rc), free(pm), free(aa), free(ma), free(va), free(pv),
        ]
        // Times, tids and stacks are checked elsewhere; here only what happened, and in which order.
        let normalized: [Event] = run.blockEvents.map {
            guard case .alloc(var a) = $0 else { return $0 }
            a.stack = .none
            a.time = 0
            a.tid = 0
            return .alloc(a)
        }
        guard let first = normalized.firstIndex(of: expected[0]) else { return XCTFail("no malloc(1001): \(normalized)") }
        let got = Array(normalized[first...].prefix(expected.count))
        XCTAssertEqual(got, expected)
        for (i, pair) in zip(got, expected).enumerated() where pair.0 != pair.1 {
            XCTFail("event \(i): got \(pair.0), expected \(pair.1)")
        }
    }

    func testReallocAndReallocarrayCallSites() throws {
        let (_, run, ranges) = try heapRun()
        let r0 = try run.value("realloc_null"), r1 = try run.value("realloc_grow"), r2 = try run.value("realloc_shrink")
        assertAlloc(run, ranges, at: r0, size: 1002, function: .realloc, site: "site_realloc")
        assertAlloc(run, ranges, at: r1, size: 50000, function: .realloc, site: "site_realloc", replaces: r0)
        assertAlloc(run, ranges, at: r2, size: 40000, function: .realloc, site: "site_realloc", replaces: r1)
        let ra = try run.value("reallocarray"), rc = try run.value("reallocarray_grow")
        assertAlloc(run, ranges, at: ra, size: 1010, function: .reallocarray, site: "site_reallocarray")
        assertAlloc(run, ranges, at: rc, size: 2020, function: .reallocarray, site: "site_reallocarray", replaces: ra)
    }

    /// Every block is freed after its allocation; free(NULL) records nothing; nothing was lost.
    func testFreesFollowTheirAllocationsAndNothingIsLost() throws {
        let (_, run, _) = try heapRun()
        let seq = run.blockEvents
        for label in ["calloc", "reallocarray_grow", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc"] {
            let p = try run.value(label)
            let allocAt = seq.lastIndex { if case .alloc(let a) = $0 { return a.address == p } else { return false } }
            let freeAt = seq.lastIndex { $0 == .free(address: p, kind: .heap, pending: false) }
            XCTAssertNotNil(allocAt, label)
            XCTAssertNotNil(freeAt, label)
            if let allocAt, let freeAt { XCTAssertLessThan(allocAt, freeAt, label) }
        }
        XCTAssertFalse(seq.contains(.free(address: 0, kind: .heap, pending: false)))
        XCTAssertEqual(run.counters.lostEvents, 0)
        XCTAssertEqual(run.counters.lostBytes, 0)
        XCTAssertEqual(run.counters.stackTableFull, 0)
        XCTAssertEqual(run.unreadableBytes, 0)
    }

    /// Stacks and modules precede their first use, and the main executable is reported by path and build-id.
    func testStacksAndModulesComeBeforeTheirUse() throws {
        let (program, run, ranges) = try heapRun()
        var seenStacks = Set<UInt64>()
        var seenModules: [ModuleInfo] = []
        for e in run.events {
            switch e {
            case .stack(let d):
                seenStacks.insert(d.id)
                XCTAssertFalse(seenModules.isEmpty, "a stack came before any module")
                XCTAssertFalse(d.frames.isEmpty)
            case .module(let m): seenModules.append(m)
            case .alloc(let a):
                if case .local(let id) = a.stack { XCTAssertTrue(seenStacks.contains(id), "stack \(id) used before it was sent") }
            default: break
            }
        }
        let exe = seenModules.filter { $0.path == program.path }
        XCTAssertEqual(exe.count, 1, "\(seenModules.map(\.path))")
        let readelf = try Run.capture(["/usr/bin/env", "readelf", "-n", program.path]).stdout
        let hex = readelf.split(separator: "\n").first { $0.contains("Build ID:") }?.split(separator: " ").last.map(String.init)
        XCTAssertEqual(exe.first?.buildID.map { String(format: "%02x", $0) }.joined(), hex)
        let main = try XCTUnwrap(ranges["main"])
        XCTAssertTrue(exe.first.map { $0.lo <= main.lowerBound && main.upperBound <= $0.hi } ?? false, "main lies in the executable's range")
        let ids = seenModules.map(\.id)
        XCTAssertEqual(Set(ids).count, ids.count, "module ids are unique")
        XCTAssertTrue(seenModules.contains { $0.path.hasSuffix("/libc.so.6") })
        XCTAssertFalse(seenModules.contains { $0.path.contains("vdso") })
    }

    /// LEAKSHIM_UNWIND=fp walks frame pointers instead of libunwind: for code built with them (the test
    /// programs are) it finds the same call sites, innermost two frames included.
    func testFramePointerUnwindingFindsTheSameCallSites() throws {
        let (program, run, ranges) = try heapRun()
        let fp = try Shim.run(program.path, environment: ["LEAKSHIM_UNWIND": "fp"])
        XCTAssertEqual(fp.status, 0, fp.stderr)
        let fpRanges = try Shim.functionRanges(program, fp)
        XCTAssertEqual(fpRanges["main"]?.count, ranges["main"]?.count)
        let labels = ["malloc", "calloc", "realloc_null", "reallocarray", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc"]
        for label in labels {
            func sitePair(_ r: ShimRun, _ rr: [String: Range<UInt64>]) throws -> [UInt64] {
                let p = try r.value(label)
                let a = try XCTUnwrap(r.allocs(at: p).first { $0.function != .malloc || label == "malloc" }, label)
                // Offsets from main's start: the two runs load the program at different addresses.
                let base = try XCTUnwrap(rr["main"]).lowerBound
                return r.frames(of: a).prefix(2).map { $0 &- base }
            }
            let viaFP = try sitePair(fp, fpRanges), viaLibunwind = try sitePair(run, ranges)
            XCTAssertEqual(viaFP.count, 2, label)
            XCTAssertEqual(viaFP, viaLibunwind, label)
        }
        // The walk really ran: it stops in libc's start code (no frame pointers), libunwind reads on to _start.
        let viaFP = fp.frames(of: try XCTUnwrap(fp.allocs(at: try fp.value("malloc")).first))
        let viaLibunwind = run.frames(of: try XCTUnwrap(run.allocs(at: try run.value("malloc")).first))
        XCTAssertLessThan(viaFP.count, viaLibunwind.count)
    }
}
