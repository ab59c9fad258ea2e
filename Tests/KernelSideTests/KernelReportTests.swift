import Foundation
import LeakReport
import KernelSession
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// The oom and reclaim reports on a session written with known kernel rows: exact text and JSON. These
/// need no privileges.
final class KernelReportTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try KernelTestSupport.scratchDirectory("reports")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func session(_ rows: KernelRows) throws -> SessionReader {
        let path = dir.appendingPathComponent("k.leaks").path
        let info = SessionInfo(mode: .kernel, command: ["leakcollect", "--kernel"], pid: nil, startRealtimeNs: 1_700_000_000_000_000_000, startMonotonicNs: 1_000_000_000, intervalMs: 1000)
        let w = try SessionWriter(creating: path, info: info, parts: [KernelSchema.self])
        var batch = SessionBatch()
        batch.records = [rows]
        batch.timeNs = 5_000_000_000
        try w.write(batch)
        try w.finish(end: .stopped, endRealtimeNs: 1_700_000_004_000_000_000, endMonotonicNs: 5_000_000_000)
        return try SessionReader(path: path)
    }

    private var oom: OOMEventRow {
        OOMEventRow(
            timeNs: 3_000_000_000, realtimeNs: 1_700_000_002_000_000_000, pid: 4242, tid: 4243, comm: "hog", uid: 1000, totalVmKB: 70000,
            anonRssKB: 61440, fileRssKB: 1024, shmemRssKB: 0, pgtablesKB: 180, oomScoreAdj: 300, killed: true, memcg: "/jobs/hog",
            memcgLimitBytes: 64 << 20, memcgUsageBytes: 64 << 20, triggerPid: 4242, triggerComm: "hog",
            meminfo: ["MemTotal": 1000, "MemFree": 100, "AnonPages": 600, "Slab": 50, "SUnreclaim": 20, "Shmem": 5, "Cached": 7],
            loadavg: "0.50 0.40 0.30 2/100 4242", directReclaimsBefore: 0, memcgReclaimsBefore: 17)
    }

    func testOOMTextIsOneOomkillLinePerVictimWithMeminfoHighlights() throws {
        var rows = KernelRows()
        var exiting = oom
        exiting.timeNs = 4_000_000_000
        exiting.pid = 77
        exiting.tid = 77
        exiting.comm = "dying"
        exiting.killed = false
        rows.oomEvents = [oom, exiting]
        rows.reaper = [OOMReaperRow(timeNs: 3_002_000_000, pid: 4242, step: .start), OOMReaperRow(timeNs: 3_005_500_000, pid: 4242, step: .finish)]
        let text = OOMTextRenderer.render(try OOMReport.build(try session(rows)))
        let clock = Formatting.clock(realtimeNs: oom.realtimeNs)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines[1], "1 OOM kill")
        XCTAssertEqual(
            lines[3],
            "\(clock) OOM kill of PID 4242 (\"hog\"), anon-rss 61440 kB, file-rss 1024 kB, shmem-rss 0 kB, total-vm 70000 kB, pgtables 180 kB, "
                + "uid 1000, oom_score_adj 300, memcg /jobs/hog (limit 64.0 MiB), triggered by PID 4242 (\"hog\"), loadavg 0.50 0.40 0.30 2/100 4242")
        XCTAssertEqual(lines[4], "  meminfo: MemTotal 1000 kB, MemFree 100 kB, AnonPages 600 kB, Shmem 5 kB, Slab 50 kB, SUnreclaim 20 kB")
        XCTAssertEqual(lines[5], "  before it: 17 memcg reclaims, 0 direct reclaims")
        XCTAssertEqual(lines[6], "  oom_reaper: start +2.0 ms, finish +5.5 ms")
        XCTAssertTrue(lines[8].hasSuffix(" OOM victim PID 77 (\"dying\") was already exiting (marked, not killed), anon-rss 61440 kB, file-rss 1024 kB, "
            + "shmem-rss 0 kB, total-vm 70000 kB, pgtables 180 kB, uid 1000, oom_score_adj 300, memcg /jobs/hog (limit 64.0 MiB), "
            + "triggered by PID 4242 (\"hog\"), loadavg 0.50 0.40 0.30 2/100 4242"), lines[8])
    }

    func testOOMJSONSpellsTheDocumentedFields() throws {
        var rows = KernelRows()
        rows.oomEvents = [oom]
        let json = OOMJSON(try OOMReport.build(try session(rows))).encoded()
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let e = try XCTUnwrap((object["events"] as? [[String: Any]])?.first)
        XCTAssertEqual(e["pid"] as? Int, 4242)
        XCTAssertEqual(e["comm"] as? String, "hog")
        XCTAssertEqual(e["anon_rss_kb"] as? Int, 61440)
        XCTAssertEqual(e["total_vm_kb"] as? Int, 70000)
        XCTAssertEqual(e["oom_score_adj"] as? Int, 300)
        XCTAssertEqual(e["memcg"] as? String, "/jobs/hog")
        XCTAssertEqual(e["memcg_limit_bytes"] as? Int, 64 << 20)
        XCTAssertEqual(e["killed"] as? Bool, true)
        XCTAssertEqual((e["meminfo"] as? [String: Int])?["Cached"], 7)
        XCTAssertEqual((e["trigger"] as? [String: Any])?["pid"] as? Int, 4242)
        XCTAssertEqual((e["reclaims_before"] as? [String: Int])?["memcg"], 17)
        XCTAssertEqual(e["time"] as? String, "2023-11-14T22:13:22.000Z")
    }

    func testReclaimTextHasBpftraceHistogramsAndStallers() throws {
        var rows = KernelRows()
        rows.reclaimTotals = [ReclaimTotalRow(kind: .memcg, count: 7, totalNs: 200_000, maxNs: 70_000, reclaimedPages: 12)]
        rows.reclaimBuckets = [
            ReclaimBucketRow(kind: .memcg, bucket: 13, count: 4), ReclaimBucketRow(kind: .memcg, bucket: 16, count: 3),
        ]
        rows.stallers = [ReclaimStallerRow(kind: .memcg, pid: 4242, comm: "hog", count: 7, totalNs: 200_000, maxNs: 70_000)]
        rows.kswapd = [KswapdRow(nid: 0, wakes: 3, sleeps: 2)]
        rows.shrinkers = [ShrinkerRow(name: "super_cache_scan", calls: 5, totalNs: 1_500_000, maxNs: 900_000, freed: 40)]
        let text = ReclaimTextRenderer.render(try ReclaimReport.build(try session(rows)))
        XCTAssertTrue(text.contains("\ndirect reclaim: 0 stalls\n"), text)
        XCTAssertTrue(text.contains("\nmemcg reclaim: 7 stalls, 0.200 ms total, max 0.070 ms, 12 pages reclaimed\n"), text)
        let bar = String(repeating: "@", count: 52), three = String(repeating: "@", count: 39)
        XCTAssertTrue(
            text.contains(
                """
                @memcg_reclaim_ns:
                [8K, 16K)              4 |\(bar)|
                [16K, 32K)             0 |\(String(repeating: " ", count: 52))|
                [32K, 64K)             0 |\(String(repeating: " ", count: 52))|
                [64K, 128K)            3 |\(three)\(String(repeating: " ", count: 13))|

                """), text)
        XCTAssertTrue(text.contains(" PID  COMM  STALLS  TOTAL_MS  MAX_MS\n4242  hog        7     0.200   0.070\n"), text)
        XCTAssertTrue(text.contains("\nkswapd: 3 wakes, 2 sleeps\n"), text)
        XCTAssertTrue(text.contains("super_cache_scan      5     1.500   0.900     40\n"), text)
    }

    func testReclaimJSONShape() throws {
        var rows = KernelRows()
        rows.reclaimTotals = [ReclaimTotalRow(kind: .direct, count: 2, totalNs: 3000, maxNs: 2000, reclaimedPages: 1)]
        rows.reclaimBuckets = [ReclaimBucketRow(kind: .direct, bucket: 10, count: 1), ReclaimBucketRow(kind: .direct, bucket: 11, count: 1)]
        rows.kswapd = [KswapdRow(nid: 0, wakes: 1, sleeps: 1), KswapdRow(nid: 1, wakes: 2, sleeps: 0)]
        var interval = KernelIntervalRow(timeNs: 2_000_000_000)
        interval.directReclaims = 2
        interval.slabKB = 50
        rows.intervals = [interval]
        let json = ReclaimJSON(try ReclaimReport.build(try session(rows))).encoded()
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let direct = try XCTUnwrap(o["direct"] as? [String: Any])
        XCTAssertEqual(direct["count"] as? Int, 2)
        XCTAssertEqual(direct["total_ns"] as? Int, 3000)
        let hist = try XCTUnwrap(direct["histogram"] as? [[String: Int]])
        XCTAssertEqual(hist, [["low_ns": 1024, "high_ns": 2048, "count": 1], ["low_ns": 2048, "high_ns": 4096, "count": 1]])
        let memcg = try XCTUnwrap(o["memcg"] as? [String: Any])
        XCTAssertEqual(memcg["count"] as? Int, 0)
        XCTAssertEqual((memcg["histogram"] as? [Any])?.count, 0)
        let kswapd = try XCTUnwrap(o["kswapd"] as? [String: Any])
        XCTAssertEqual(kswapd["wakes"] as? Int, 3)
        XCTAssertEqual(kswapd["sleeps"] as? Int, 1)
        let intervals = try XCTUnwrap(o["intervals"] as? [[String: Any]])
        XCTAssertEqual(intervals.first?["direct_reclaims"] as? Int, 2)
        XCTAssertEqual(intervals.first?["slab_kb"] as? Int, 50)
    }

    func testHistogramBuckets() {
        XCTAssertEqual(ReclaimBucketRow.bucket(for: 0), -1)
        XCTAssertEqual(ReclaimBucketRow.bucket(for: 1), 0)
        XCTAssertEqual(ReclaimBucketRow.bucket(for: 1023), 9)
        XCTAssertEqual(ReclaimBucketRow.bucket(for: 1024), 10)
        XCTAssertEqual(
            Log2Histogram.render([-1: 1, 0: 2, 1: 4, 20: 1]).split(separator: "\n").map { String($0.prefix(24)) }.first, "[0]                    1")
        XCTAssertTrue(Log2Histogram.render([1: 4]).hasPrefix("[2, 4)                 4 |"))
        XCTAssertTrue(Log2Histogram.render([30: 1]).hasPrefix("[1G, 2G)               1 |"))
    }
}
