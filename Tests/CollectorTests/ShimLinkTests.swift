import TestSupport
import XCTest

/// What libleakshim.so brings into a traced process: only the wrapped entry points (pthread_create, so each
/// thread learns its stack's bounds before user code runs), and no Swift runtime.
final class ShimLinkTests: XCTestCase {
    func testExportsOnlyTheWrappedFunctions() throws {
        let nm = try Run.capture(["/usr/bin/env", "nm", "-D", "--defined-only", try BuildProducts.shim]).stdout
        let exported = Set(nm.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
        XCTAssertEqual(exported, [
            "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc", "memalign",
            "valloc", "pvalloc", "mmap", "mmap64", "munmap", "mremap", "dlclose", "pthread_create",
        ])
    }

    func testNeedsNoSwiftRuntimeAndNoCxxLibrary() throws {
        let readelf = try Run.capture(["/usr/bin/env", "readelf", "-d", try BuildProducts.shim]).stdout
        let needed = readelf.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line -> String? in
            guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        XCTAssertFalse(needed.isEmpty)
        let allowed = ["libunwind.so", "libc.so", "libdl.so", "libpthread.so", "ld-linux"]
        for lib in needed {
            XCTAssertTrue(allowed.contains { lib.hasPrefix($0) }, "libleakshim.so needs \(lib)")
        }
    }
}
