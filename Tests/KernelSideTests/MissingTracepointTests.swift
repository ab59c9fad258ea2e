import Foundation
import LeakReport
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// A tracepoint this kernel lacks is skipped with a warning that names it, and the rest still runs.
/// LEAKCOLLECT_EXTRA_TRACEPOINTS asks the collector to attach a counting program to more tracepoints, so
/// the test can name one that exists nowhere and go through the same attach path as every other.
final class MissingTracepointTests: XCTestCase {
    func testMissingTracepointIsSkippedWithAWarning() throws {
        try KernelTestSupport.requireRoot("the missing-tracepoint test")
        let dir = try KernelTestSupport.scratchDirectory("missing-tp")
        defer { try? FileManager.default.removeItem(at: dir) }
        let session = dir.appendingPathComponent("tp.leaks")
        var env = ProcessInfo.processInfo.environment
        env["LEAKCOLLECT_EXTRA_TRACEPOINTS"] = "kmem:leaktest_no_such_event,kmem:kmalloc"
        let r = try Run.capture([try BuildProducts.leakcollect, "--kernel", "-o", session.path, "--duration", "1", "--kind", "slab"], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(
            r.stderr.contains("leakcollect: warning: tracepoint kmem:leaktest_no_such_event does not exist on this kernel; skipped\n"), r.stderr)
        // Only that one is warned about: the _node variants merged into kmem:kmalloc in 6.1 are not.
        XCTAssertEqual(r.stderr.components(separatedBy: "warning:").count - 1, 1, r.stderr)

        // The rest ran: the session is complete, the real tracepoints recorded allocations and the extra
        // kmem:kmalloc counted hits.
        let reader = try SessionReader(path: session.path)
        XCTAssertEqual(reader.info.end, .stopped)
        let tracepoints = Dictionary(uniqueKeysWithValues: try reader.tracepoints().map { ($0.name, $0.status) })
        XCTAssertEqual(tracepoints["kmem:leaktest_no_such_event"], .missing)
        XCTAssertEqual(tracepoints["kmem:kmalloc"], .attached)
        XCTAssertEqual(tracepoints["kmem:kfree"], .attached)
        XCTAssertEqual(tracepoints["oom:mark_victim"], .attached)
        let counters = try reader.counters()
        XCTAssertGreaterThan(counters[CounterName("kernel_extra_tracepoint_hits")] ?? 0, 0)
        XCTAssertGreaterThan(counters[.events] ?? 0, 0)
        XCTAssertGreaterThan(try reader.totals().filter { $0.kind == .kernelSlab }.reduce(0) { $0 + $1.totalBlocks }, 0)
        XCTAssertFalse(try reader.kernelIntervals().isEmpty)
        // --kind slab leaves the page allocator alone.
        XCTAssertNil(tracepoints["kmem:mm_page_alloc"])
        XCTAssertTrue(try reader.totals().allSatisfy { $0.kind == .kernelSlab })
    }
}
