import Foundation
import LeakReport
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// What the session file holds besides the live blocks: per-stack totals that agree with them, the
/// modules with their build-ids, and the run's metadata.
final class SessionContentTests: XCTestCase {
    func testTotalsModulesAndMetadata() throws {
        let prog = try CProgram.build(
            "content",
            source: """
                #include <stdlib.h>
                void *keep(int i) { return malloc(100 + i); }
                int main(void) {
                    for (int i = 0; i < 10; i++) keep(i);
                    for (int i = 0; i < 1000; i++) free(malloc(64));
                    return 3;
                }
                """, extraFlags: ["-Wl,--build-id=sha1"])
        let run = try Pipeline.collect(prog, ["x y"])
        XCTAssertEqual(run.result.status, 3, "leakcollect hands on the program's status")
        let reader = try SessionReader(path: run.session)
        XCTAssertEqual(reader.info.command, [prog.path, "x y"])
        XCTAssertEqual(reader.info.mode, .launch)
        XCTAssertEqual(reader.info.end, .exited(status: 3))
        XCTAssertNotNil(reader.info.pid)
        XCTAssertGreaterThan(reader.info.endMonotonicNs ?? 0, reader.info.startMonotonicNs)

        // stack_totals agrees with the live table, stack by stack, and keeps what was ever allocated.
        let live = try reader.liveAggregates(LiveFilter())
        let totals = try reader.totals()
        for a in live {
            let t = try XCTUnwrap(totals.first { $0.stackID == a.stackID && $0.kind == a.kind })
            XCTAssertEqual([t.bytes, t.blocks], [a.bytes, a.blocks])
        }
        let kept = try XCTUnwrap(TopReport.build(reader, options: TopOptions()).stacks.first { $0.frames.first?.function == "keep" })
        XCTAssertEqual([kept.bytes, kept.blocks], [1045, 10])
        let churn = try XCTUnwrap(totals.first { $0.bytes == 0 && $0.totalBlocks == 1000 })
        XCTAssertEqual(churn.totalBytes, 64_000)

        // The program's module, with the build-id the linker gave it.
        let readelf = try Run.capture(["/usr/bin/readelf", "-n", prog.path]).stdout
        let buildID = try XCTUnwrap(
            readelf.split(separator: "\n").first { $0.contains("Build ID:") }?.split(separator: " ").last.map(String.init))
        let module = try XCTUnwrap(try reader.modules().first { $0.path == prog.path })
        XCTAssertEqual(module.buildID, buildID)
        XCTAssertLessThan(module.lo, module.hi)
    }
}
