import Foundation
import LeakReport
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// The session is written as the program runs: per-interval snapshots for trends, and a collector
/// killed mid-run leaves a readable session while the program carries on unharmed.
final class IncrementalSessionTests: XCTestCase {
    static let slowLeak = """
        #include <stdlib.h>
        #include <unistd.h>
        void *drip(void) { return malloc(1000); } // IS-DRIP
        int main(int argc, char **argv) {
            int n = argc > 1 ? atoi(argv[1]) : 10;
            for (int i = 0; i < n; i++) { drip(); usleep(100000); }
            return 0;
        }
        """

    func testSnapshotsFollowTheGrowthOfAStack() throws {
        let prog = try CProgram.build("drip", source: Self.slowLeak)
        let run = try Pipeline.collect(prog, ["20"], extra: ["--interval", "0.5"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let reader = try SessionReader(path: run.session)
        let report = try TopReport.build(reader, options: TopOptions())
        let stack = try XCTUnwrap(report.stacks.first { $0.frames.first?.function == "drip" })
        XCTAssertEqual([stack.bytes, stack.blocks], [20_000, 20])
        let series = try reader.history().compactMap { i in
            i.points.first { $0.stackID == stack.stackID }.map { (timeNs: i.interval.timeNs, bytes: $0.bytes, blocks: $0.blocks) }
        }
        // Two seconds at half-second intervals: several snapshots, growing, ending at the final total.
        XCTAssertGreaterThanOrEqual(series.count, 3, "\(series)")
        XCTAssertEqual(series.map(\.bytes), series.map(\.bytes).sorted())
        XCTAssertEqual(series.map(\.timeNs), series.map(\.timeNs).sorted())
        XCTAssertLessThan(series.first?.bytes ?? .max, 20_000)
        XCTAssertEqual(series.last?.bytes, 20_000)
        XCTAssertEqual(series.last?.blocks, 20)
        XCTAssertEqual(reader.info.intervalMs, 500)
    }

    func testAKilledCollectorLosesOnlyTheLastIntervalAndTheProgramCarriesOn() throws {
        let prog = try CProgram.build("drip_long", source: Self.slowLeak)
        let session = Pipeline.sessionPath("killed")
        // The program runs 3 s; the collector is killed after about 1.5 s.
        let collector = try RunningProcess([try BuildProducts.leakcollect, "-o", session, "--interval", "0.2", "--", prog.path, "30"])
        usleep(1_500_000)
        collector.signal(SIGKILL)
        XCTAssertEqual(try collector.wait().signal, SIGKILL)
        // The program was the collector's child; it must finish on its own, never hang on the ring.
        let deadline = Date().addingTimeInterval(20)
        var alive = true
        while alive && Date() < deadline {
            alive = FileManager.default.fileExists(atPath: "/proc/\(try programPID(session))")
            usleep(50_000)
        }
        XCTAssertFalse(alive, "the traced program hung after its collector died")
        let reader = try SessionReader(path: session)
        XCTAssertNil(reader.info.end, "nobody recorded an end")
        let report = try TopReport.build(reader, options: TopOptions())
        let blocks = report.stacks.first { $0.frames.first?.function == "drip" }?.blocks ?? 0
        // About 15 drips happened before the kill; at most the last 0.2 s interval is missing.
        XCTAssertGreaterThanOrEqual(blocks, 10)
        XCTAssertLessThanOrEqual(blocks, 16)
        XCTAssertEqual(report.stacks.first { $0.frames.first?.function == "drip" }?.bytes, blocks * 1000)
        XCTAssertTrue(TopTextRenderer.render(report).contains("session incomplete: the collector stopped without finishing it"))
    }

    private func programPID(_ session: String) throws -> Int32 {
        try XCTUnwrap(try SessionReader(path: session).info.pid)
    }

    /// Stacks are symbolized and written while the program runs, ahead of the interval's cut; every
    /// location written then already names a module the session holds (a live view reads a location
    /// once, so one that named a missing module would show it without its module for good).
    func testLocationsWrittenAheadOfTheirIntervalNameModulesTheSessionHolds() throws {
        let prog = try CProgram.build("is_early", source: Self.slowLeak)
        let session = Pipeline.sessionPath("early")
        // Intervals of 2 s: the program's first stacks are written by the symbolizer long before the first cut.
        let collector = try RunningProcess([try BuildProducts.leakcollect, "--quiet", "--interval", "2", "-o", session, "--", prog.path, "20"])
        defer { collector.signal(SIGKILL) }
        let check = """
            SELECT (SELECT count(*) FROM locations),
                   (SELECT count(*) FROM locations l LEFT JOIN modules m ON l.module = m.id WHERE l.module IS NOT NULL AND m.id IS NULL)
            """
        var sawEarly = false
        let deadline = Date().addingTimeInterval(1.8)
        while Date() < deadline {
            usleep(50_000)
            let r = try Run.capture(["/usr/bin/sqlite3", "file:\(session)?mode=ro", check])
            guard r.status == 0, let line = r.stdout.split(separator: "\n").first else { continue }
            let counts = line.split(separator: "|").compactMap { Int($0) }
            guard counts.count == 2 else { continue }
            if counts[0] > 0 { sawEarly = true }
            XCTAssertEqual(counts[1], 0, "locations naming a module the session does not hold yet")
        }
        XCTAssertTrue(sawEarly, "no location was written before the first cut: the test saw nothing to check")
        XCTAssertEqual(try collector.wait().status, 0)
    }
}
