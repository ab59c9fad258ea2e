import Foundation
import LeakReport
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// A memory hog in a memory cgroup with a small limit meets the OOM killer; the session records the kill
/// of that pid and comm with its context, and the memcg reclaim that came before it.
final class OOMKillTests: XCTestCase {
    static let hogSource = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        int main(void) {
            char line[16];
            if (!fgets(line, sizeof line, stdin)) return 1;
            for (int i = 0; i < 4096; i++) {
                char *p = malloc(1 << 20);
                if (!p) return 2;
                memset(p, 0x5a, 1 << 20);
            }
            return 0;
        }
        """

    func testMemcgOOMKillIsReportedWithContext() throws {
        try KernelTestSupport.requireRoot("the memcg OOM test")
        let hogProgram = try CProgram.build("oomhog", source: Self.hogSource)
        let dir = try KernelTestSupport.scratchDirectory("oom")
        defer { try? FileManager.default.removeItem(at: dir) }
        let session = dir.appendingPathComponent("oom.leaks")
        let limit: UInt64 = 48 << 20
        let cgroup = try MemoryCgroup(limitBytes: limit)
        defer { cgroup.remove() }

        let hog = try RunningProcess([hogProgram.path])
        defer {
            if hog.process.isRunning { hog.signal(SIGKILL) }
            _ = try? hog.wait()
        }
        try cgroup.add(pid: hog.pid)
        let collector = try KernelTestSupport.startCollector(session: session, ["--kind", "slab", "--interval", "0.2"])
        hog.send("go")
        let (_, signal) = try hog.wait(timeout: 60)
        XCTAssertEqual(signal, SIGKILL, "the hog was not OOM-killed")
        usleep(300_000)
        // SIGTERM ends a collection as cleanly as Ctrl-C.
        try KernelTestSupport.stop(collector, signal: SIGTERM)

        let reader = try SessionReader(path: session.path)
        XCTAssertEqual(reader.info.end, .stopped)
        let report = try OOMReport.build(reader)
        let mine = report.victims.filter { $0.event.pid == hog.pid }
        XCTAssertEqual(mine.count, 1, "OOM events: \(report.victims.map(\.event))")
        let e = try XCTUnwrap(mine.first).event
        XCTAssertEqual(e.comm, "oomhog")
        XCTAssertEqual(e.tid, hog.pid)
        XCTAssertEqual(e.killed, true)
        XCTAssertEqual(e.memcg, cgroup.name)
        XCTAssertEqual(e.memcgLimitBytes, limit)
        // The hog's memory is anonymous and filled the cgroup.
        XCTAssertGreaterThan(try XCTUnwrap(e.anonRssKB), limit / 1024 / 2)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(e.totalVmKB), try XCTUnwrap(e.anonRssKB))
        XCTAssertEqual(e.oomScoreAdj, 0)
        XCTAssertEqual(e.uid, 0)
        // The hog itself hit the limit, so it ran the OOM killer.
        XCTAssertEqual(e.triggerPid, hog.pid)
        XCTAssertNotNil(e.meminfo["MemFree"])
        XCTAssertFalse(e.loadavg.isEmpty)
        // The kernel reclaimed in the cgroup before it gave up.
        XCTAssertGreaterThan(e.memcgReclaimsBefore, 0)

        let reclaim = try ReclaimReport.build(reader)
        let memcg = try XCTUnwrap(reclaim.kinds[.memcg])
        XCTAssertGreaterThanOrEqual(memcg.totals.count, e.memcgReclaimsBefore)
        XCTAssertTrue(memcg.top.contains { $0.pid == hog.pid && $0.comm == "oomhog" }, "\(memcg.top)")
        XCTAssertEqual(memcg.histogram.reduce(0) { $0 + $1.count }, memcg.totals.count)

        // The CLI prints the same, in oomkill's manner and as JSON.
        let leakreport = try BuildProducts.leakreport
        let text = try Run.capture([leakreport, "oom", session.path])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("OOM kill of PID \(hog.pid) (\"oomhog\"), anon-rss \(e.anonRssKB ?? 0) kB"), text.stdout)
        XCTAssertTrue(text.stdout.contains("memcg \(cgroup.name)"), text.stdout)
        XCTAssertTrue(text.stdout.contains("loadavg \(e.loadavg)"), text.stdout)
        let json = try Run.capture([leakreport, "oom", session.path, "--format", "json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let decoded = try JSONDecoder().decode(OOMJSON.self, from: Data(json.stdout.utf8))
        let je = try XCTUnwrap(decoded.events.first { $0.pid == hog.pid })
        XCTAssertEqual(je.comm, "oomhog")
        XCTAssertEqual(je.anonRssKB, e.anonRssKB)
        XCTAssertEqual(je.totalVmKB, e.totalVmKB)
        XCTAssertEqual(je.oomScoreAdj, 0)
        XCTAssertEqual(je.memcg, cgroup.name)
        XCTAssertEqual(je.meminfo["MemFree"], e.meminfo["MemFree"])
        // The documented field names themselves.
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let first = try XCTUnwrap((object["events"] as? [[String: Any]])?.first { $0["pid"] as? Int == Int(hog.pid) })
        for key in ["time", "pid", "comm", "anon_rss_kb", "total_vm_kb", "oom_score_adj", "memcg", "meminfo"] {
            XCTAssertNotNil(first[key], "JSON lacks \(key)")
        }

        let reclaimJSON = try Run.capture([leakreport, "reclaim", session.path, "--format", "json"])
        XCTAssertEqual(reclaimJSON.status, 0, reclaimJSON.stderr)
        let r = try JSONDecoder().decode(ReclaimJSON.self, from: Data(reclaimJSON.stdout.utf8))
        XCTAssertEqual(r.memcg.count, memcg.totals.count)
        XCTAssertEqual(r.memcg.histogram.reduce(0) { $0 + $1.count }, r.memcg.count)
    }
}
