import CollectionRunner
import ShimSource
import Tracking
import Glibc
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// mmap, munmap and mremap under the shim: lengths as requested, backing, partial and invalid unmaps, and
/// mremap's pending unmap / replacement / undo protocol.
final class ShimMmapTests: XCTestCase {
    static let source = """
        #define _GNU_SOURCE
        #include <fcntl.h>
        #include <stdio.h>
        #include <sys/mman.h>
        #include <unistd.h>

        #define SITE __attribute__((noinline))
        SITE void *site_anon(size_t n) { return mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); }
        SITE void *site_shared(size_t n) { return mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0); }
        SITE void *site_file(int fd, size_t n) { return mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0); }
        SITE void *site_mremap(void *p, size_t o, size_t n, int flags) { return mremap(p, o, n, flags); }
        #define FN(f) printf("fn " #f " %p\\n", (void *)f)
        #define SHOW(label, p) printf(label " %p\\n", (void *)(p))
        int main(int argc, char **argv) {
            (void)argc;
            FN(site_anon); FN(site_shared); FN(site_file); FN(site_mremap); FN(main);
            char *a = site_anon(5 * 4096 + 100); SHOW("anon", a);
            int fd = open(argv[0], O_RDONLY);
            char *f = site_file(fd, 10000); SHOW("file", f);
            printf("partial %d\\n", munmap(a + 4096, 4096));
            printf("unaligned %d\\n", munmap(a + 1, 4096));
            printf("empty %d\\n", munmap(a, 0));
            char *b = site_anon(3 * 4096); SHOW("b", b);
            char *c = site_mremap(b, 3 * 4096, 64 * 4096, MREMAP_MAYMOVE); SHOW("grown", c);
            void *bad = site_mremap(c, 64 * 4096, (size_t)1 << 50, MREMAP_MAYMOVE); SHOW("failed", bad);
            char *d = site_mremap(c, 64 * 4096, 64 * 4096, MREMAP_MAYMOVE | MREMAP_DONTUNMAP); SHOW("dontunmap", d);
            char *s = site_shared(4096); SHOW("shared", s);
            char *e = site_mremap(s, 0, 4096, MREMAP_MAYMOVE); SHOW("duplicate", e);
            printf("unmap_c %d\\n", munmap(c, 64 * 4096));
            munmap(d, 64 * 4096); munmap(f, 10000); munmap(s, 4096); munmap(e, 4096); munmap(a, 5 * 4096 + 100);
            return 0;
        }
        """

    func testMappingsAndUnmapsInOrder() throws {
        let program = try CProgram.build("maps", source: Self.source)
        let run = try Shim.run(program.path)
        XCTAssertEqual(run.status, 0, run.stderr)
        let ranges = try Shim.functionRanges(program, run)
        let v = { (label: String) throws -> UInt64 in try run.value(label) }
        let a = try v("anon"), f = try v("file"), b = try v("b"), c = try v("grown"), d = try v("dontunmap")
        let s = try v("shared"), e = try v("duplicate")
        XCTAssertEqual(try v("partial"), 0)
        XCTAssertEqual(try run.value("failed"), UInt64(bitPattern: -1), "MAP_FAILED")
        XCTAssertNotEqual(d, c)
        XCTAssertNotEqual(e, s)

        func map(_ p: UInt64, _ n: UInt64, _ fn: AllocFunction, _ backing: Backing?, _ old: UInt64? = nil) -> Event {
            .alloc(Allocation(address: p, size: n, kind: .mmap, function: fn, stack: .none, time: 0, replaces: old, backing: backing))
        }
        let expected: [Event] = [
            map(a, 5 * 4096 + 100, .mmap, .anonymous),
            map(f, 10000, .mmap, .file),
            .unmap(address: a + 4096, length: 4096, pending: false),
            // munmap(a + 1) is invalid and munmap(a, 0) is empty: no records.
            map(b, 3 * 4096, .mmap, .anonymous),
            .unmap(address: b, length: 3 * 4096, pending: true), map(c, 64 * 4096, .mremap, nil, b),
            .unmap(address: c, length: 64 * 4096, pending: true), .undo(address: c, kind: .mmap),
            map(d, 64 * 4096, .mremap, nil),  // DONTUNMAP keeps c: nothing released
            map(s, 4096, .mmap, .anonymous),
            map(e, 4096, .mremap, nil),  // old_len 0 duplicates s: nothing released
            .unmap(address: c, length: 64 * 4096, pending: false),
            .unmap(address: d, length: 64 * 4096, pending: false),
            .unmap(address: f, length: 10000, pending: false),
            .unmap(address: s, length: 4096, pending: false),
            .unmap(address: e, length: 4096, pending: false),
            .unmap(address: a, length: 5 * 4096 + 100, pending: false),
        ]
        let mapEvents: [Event] = run.blockEvents.compactMap {
            switch $0 {
            case .alloc(var x) where x.kind == .mmap:
                x.stack = .none
                x.time = 0
                x.tid = 0
                return .alloc(x)
            case .unmap, .undo(_, .mmap): return $0
            default: return nil
            }
        }
        guard let first = mapEvents.firstIndex(where: { if case .alloc(let x) = $0 { return x.address == a } else { return false } }) else {
            return XCTFail("no mapping at the anon address: \(mapEvents)")
        }
        XCTAssertEqual(Array(mapEvents[first...]), expected)

        // Every mapping is charged to the function that called mmap/mremap, then to main.
        for case .alloc(let x) in run.events where x.kind == .mmap && [a, f, b, c, d, s, e].contains(x.address) {
            let frames = run.frames(of: x)
            let site = x.function == .mremap ? "site_mremap" : x.backing == .file ? "site_file" : x.address == s ? "site_shared" : "site_anon"
            XCTAssertTrue(try XCTUnwrap(ranges[site]).contains(frames.first ?? 0), "\(x) not charged to \(site)")
            XCTAssertTrue(try XCTUnwrap(ranges["main"]).contains(frames.dropFirst().first ?? 0))
            XCTAssertEqual(x.tid, UInt32(run.pid))
        }
        XCTAssertEqual(run.counters.lostEvents, 0)
    }
}
