import Foundation
import GRDB
import KernelSession
import LeakReport
import SessionStore
import TestSupport
import Vocabulary
import XCTest

/// The kernel tables as their row types declare them: exact round trips (unsigned values above
/// Int64.max included), sessions of the shipped v2 layout, and a corrupt session, never a crash, for a
/// cell of the wrong type in any column of any kernel table. These need no privileges.
final class KernelTableTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try KernelTestSupport.scratchDirectory("tables")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// One row in every kernel table, with values at the edges of their types.
    static var rows: KernelRows {
        var r = KernelRows()
        r.oomEvents = [
            OOMEventRow(
                timeNs: 3_000_000_000, realtimeNs: UInt64(Int64.max) + 7, pid: Int32.max, tid: -1, comm: "kworker/ü:1",
                uid: UInt32.max, totalVmKB: 70000, anonRssKB: 0, fileRssKB: 1, shmemRssKB: 2, pgtablesKB: 3, oomScoreAdj: -1000,
                killed: false, memcg: "/a b/c", memcgLimitBytes: UInt64.max, memcgUsageBytes: 64 << 20, triggerPid: 1, triggerComm: "",
                meminfo: ["MemFree": 100, "Huge": UInt64.max], loadavg: "0.50 0.40 0.30 2/100 4242", directReclaimsBefore: 3,
                memcgReclaimsBefore: UInt64.max - 1),
            OOMEventRow(
                timeNs: 5, realtimeNs: 6, pid: 7, tid: 7, comm: "x", triggerPid: 7, triggerComm: "x", meminfo: [:], loadavg: "",
                directReclaimsBefore: 0, memcgReclaimsBefore: 0),
        ]
        r.reaper = [OOMReaperRow(timeNs: UInt64.max, pid: 7, step: .skip)]
        r.reclaimTotals = [ReclaimTotalRow(kind: .memcg, count: 7, totalNs: UInt64.max, maxNs: 70_000, reclaimedPages: 12)]
        r.reclaimBuckets = [ReclaimBucketRow(kind: .direct, bucket: -1, count: 4)]
        r.stallers = [ReclaimStallerRow(kind: .direct, pid: -5, comm: "hog", count: 1, totalNs: 2, maxNs: UInt64.max)]
        r.kswapd = [KswapdRow(nid: 3, wakes: UInt64.max, sleeps: 0)]
        r.shrinkers = [ShrinkerRow(name: "super_cache_scan", calls: 5, totalNs: 1_500_000, maxNs: 900_000, freed: UInt64.max)]
        var i = KernelIntervalRow(timeNs: 2_000_000_000)
        i.slabAllocs = 1
        i.slabFrees = 2
        i.pageAllocs = 3
        i.pageFrees = 4
        i.percpuAllocs = 5
        i.percpuFrees = 6
        i.directReclaims = 7
        i.directReclaimNs = 8
        i.memcgReclaims = 9
        i.memcgReclaimNs = 10
        i.kswapdWakes = 11
        i.shrinkSlabNs = 12
        i.writepages = UInt64.max
        i.memFreeKB = 13
        i.slabKB = nil
        i.sUnreclaimKB = 14
        i.anonKB = UInt64.max
        r.intervals = [i]
        r.tracepoints = [TracepointRow(name: "kmem:kmalloc", status: .replaced, detail: "kmem:kmalloc_node")]
        return r
    }

    private func session(_ rows: KernelRows = rows, parts: [any SchemaPart.Type] = [KernelSchema.self]) throws -> String {
        let path = dir.appendingPathComponent("k-\(UUID().uuidString.prefix(6)).leaks").path
        let info = SessionInfo(
            mode: .kernel, command: ["leakcollect", "--kernel"], pid: nil, startRealtimeNs: 1_700_000_000_000_000_000,
            startMonotonicNs: 1_000_000_000, intervalMs: 1000)
        let w = try SessionWriter(creating: path, info: info, parts: parts)
        var batch = SessionBatch()
        batch.records = [rows]
        batch.timeNs = 5_000_000_000
        try w.write(batch)
        try w.finish(end: .stopped, endRealtimeNs: 1_700_000_004_000_000_000, endMonotonicNs: 5_000_000_000)
        return path
    }

    /// Every table read back through the reader the reports use.
    private func readAll(_ path: String) throws -> KernelRows {
        let reader = try SessionReader(path: path)
        var r = KernelRows()
        r.oomEvents = try reader.oomEvents()
        r.reaper = try reader.oomReaperSteps()
        r.reclaimTotals = try reader.reclaimTotals().values.filter { $0 != ReclaimTotalRow(kind: $0.kind) }
        r.reclaimBuckets = try ReclaimKind.allCases.flatMap { k throws(SessionError) in try reader.reclaimHistogram(k) }
        r.stallers = try ReclaimKind.allCases.flatMap { k throws(SessionError) in try reader.reclaimStallers(k, limit: 100) }
        r.kswapd = try reader.kswapd()
        r.shrinkers = try reader.shrinkers()
        r.intervals = try reader.kernelIntervals()
        r.tracepoints = try reader.tracepoints()
        return r
    }

    /// A reclaim bucket outside -1...63, or one bucket twice (a table rewritten without its primary
    /// key), is a corrupt session, in one line: the report used to print every bucket from the lowest to
    /// the highest, and to trap on a repeated one (found reviewing what the session fuzzers reach).
    func testReclaimBucketsOutOfRangeOrRepeatedAreACorruptSession() throws {
        let edits = [
            "UPDATE reclaim_histogram SET bucket = 1000000000000",
            "UPDATE reclaim_histogram SET bucket = -2",
            """
            CREATE TABLE copy AS SELECT * FROM reclaim_histogram; DROP TABLE reclaim_histogram;
            ALTER TABLE copy RENAME TO reclaim_histogram; INSERT INTO reclaim_histogram SELECT * FROM reclaim_histogram
            """,
        ]
        for edit in edits {
            let path = try session()
            try DatabaseQueue(path: path).write { try $0.execute(sql: edit) }
            let reader = try SessionReader(path: path)
            for build in [{ _ = try reader.reclaimHistogram(.direct) }, { _ = try ReclaimReport.build(reader) }] {
                XCTAssertThrowsError(try build(), edit) { error in
                    let message = "\(error)"
                    XCTAssertTrue(message.contains("is corrupt") && message.contains("reclaim histogram bucket"), message)
                    XCTAssertFalse(message.contains("\n"), message)
                }
            }
        }
    }

    func testEveryTableRoundTripsExactly() throws {
        let back = try readAll(try session())
        var expected = Self.rows
        // OOM events read in time order.
        expected.oomEvents.reverse()
        XCTAssertEqual(back, expected)
        XCTAssertEqual(back.oomEvents.map(\.timeNs), [5, 3_000_000_000])
    }

    func testSessionsWrittenWithTheShippedV2TablesStillRead() throws {
        let legacy = try session(parts: [ShippedKernelSchemaV2.self])
        var expected = Self.rows
        expected.oomEvents.reverse()
        XCTAssertEqual(try readAll(legacy), expected)

        // The tables the row types declare are the shipped ones, column for column (oom_events' explicit
        // id was the rowid, which every rowid table has).
        let current = try session()
        func columns(_ path: String) throws -> [String: [String]] {
            let q = try DatabaseQueue(path: path)
            return try q.read { db in
                var out: [String: [String]] = [:]
                for type in KernelRows.tables {
                    let table = type.tableName
                    out[table] = try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))").compactMap { r -> String? in
                        let name: String = try r.decode(forColumn: "name")
                        if table == "oom_events" && name == "id" { return nil }
                        let type: String = try r.decode(forColumn: "type")
                        let notNull: Int = try r.decode(forColumn: "notnull")
                        let pk: Int = try r.decode(forColumn: "pk")
                        return "\(name) \(type) notnull=\(notNull) pk=\(pk)"
                    }
                    let withoutRowID = try Int.fetchOne(db, sql: "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = ?", arguments: [table])
                    out[table]?.append("without rowid: \(withoutRowID ?? -1)")
                }
                return out
            }
        }
        let shipped = try columns(legacy)
        XCTAssertEqual(shipped.count, 9)
        XCTAssertEqual(try columns(current), shipped)
        XCTAssertEqual(shipped["kernel_intervals"]?.first, "time_ns INTEGER notnull=1 pk=1")
    }

    /// What a wrong cell may be in a column of this storage class. SQLite's column affinity turns
    /// numbers written into a TEXT column into text, so only a blob can be wrong there.
    private static func wrongCells(_ c: TableColumn) -> [DatabaseValue] {
        switch c.storage {
        case .integer: return ["abc".databaseValue, 1.5.databaseValue, Data([0, 1]).databaseValue]
        case .text: return [Data([0x61]).databaseValue]
        }
    }

    /// Cells of the right storage class that are still impossible values.
    private static let impossibleCells: [String: [DatabaseValue]] = [
        "oom_events.pid": [(Int64(1) << 40).databaseValue],
        "oom_events.uid": [(-1 as Int64).databaseValue],
        "oom_events.killed": [(5 as Int64).databaseValue],
        "oom_events.meminfo": ["not json".databaseValue, "{\"MemFree\": -3}".databaseValue],
        "oom_reaper.step": ["bogus".databaseValue],
        "reclaim_totals.kind": ["sideways".databaseValue],
        "reclaim_histogram.kind": ["".databaseValue],
        "reclaim_stallers.kind": ["DIRECT".databaseValue],
        "tracepoints.status": ["maybe".databaseValue],
    ]

    /// The report that reads a table, as `leakreport` builds it.
    private static func report(for table: String) -> (SessionReader) throws -> Void {
        switch table {
        case OOMEventRow.tableName, OOMReaperRow.tableName: return { _ = try OOMReport.build($0) }
        case TracepointRow.tableName: return { _ = try $0.tracepoints() }
        default: return { _ = try ReclaimReport.build($0) }
        }
    }

    func testAWrongCellInAnyColumnOfAnyTableIsACorruptSession() throws {
        let path = try session()
        let writer = try DatabaseQueue(path: path)
        var checked = 0
        for type in KernelRows.tables {
            let shape = try TableShape(type)
            let build = Self.report(for: shape.table)
            for column in shape.columns {
                let name = "\(shape.table).\(column.name)"
                let original = try writer.read { db in try DatabaseValue.fetchOne(db, sql: "SELECT \(column.name) FROM \(shape.table) LIMIT 1") }
                for bad in Self.wrongCells(column) + (Self.impossibleCells[name] ?? []) {
                    do {
                        try writer.write { db in try db.execute(sql: "UPDATE \(shape.table) SET \(column.name) = ?", arguments: [bad]) }
                    } catch let e as DatabaseError where e.resultCode == .SQLITE_MISMATCH {
                        // An INTEGER PRIMARY KEY is the rowid itself: SQLite refuses anything else.
                        XCTAssertTrue(shape.primaryKey == [column.name] && column.storage == .integer, "SQLite refused \(bad) in \(name)")
                        continue
                    }
                    XCTAssertThrowsError(try build(try SessionReader(path: path)), "\(bad) in \(name)") { error in
                        guard case .corrupt(let p, let detail)? = error as? SessionError else {
                            return XCTFail("\(bad) in \(name): \(error)")
                        }
                        XCTAssertEqual(p, path)
                        XCTAssertTrue(detail.hasPrefix("\(name) holds "), "\(bad) in \(name): \(detail)")
                        XCTAssertFalse(detail.contains("\n"))
                    }
                    checked += 1
                    try writer.write { db in try db.execute(sql: "UPDATE \(shape.table) SET \(column.name) = ?", arguments: [original]) }
                }
            }
        }
        // 68 columns: 54 integer ones with three wrong cells each, 14 text ones with one, the 10 impossible
        // values, less the three SQLite refuses for each rowid column (kswapd.nid, kernel_intervals.time_ns).
        XCTAssertEqual(checked, 54 * 3 + 14 + 10 - 2 * 3)
        // Put back, the session reads as written.
        XCTAssertEqual(try readAll(path).intervals, Self.rows.intervals)
    }

    func testLeakreportPrintsOneLineForACorruptCell() throws {
        let path = try session()
        let writer = try DatabaseQueue(path: path)
        try writer.write { db in
            try db.execute(sql: "UPDATE oom_events SET pid = 'abc'")
            try db.execute(sql: "UPDATE kernel_intervals SET percpu_frees = 2.5")
        }
        let leakreport = try BuildProducts.leakreport
        for format in ["text", "json"] {
            let oom = try Run.capture([leakreport, "oom", path, "--format", format])
            XCTAssertEqual(oom.status, 1)
            XCTAssertEqual(oom.stdout, "")
            XCTAssertEqual(oom.stderr, "leakreport: session file \(path) is corrupt: oom_events.pid holds text 'abc', expected an integer\n")
            let reclaim = try Run.capture([leakreport, "reclaim", path, "--format", format])
            XCTAssertEqual(reclaim.status, 1)
            XCTAssertEqual(reclaim.stdout, "")
            XCTAssertEqual(
                reclaim.stderr, "leakreport: session file \(path) is corrupt: kernel_intervals.percpu_frees holds the real 2.5, expected an integer\n")
        }
    }

    /// A session of another schema version is refused with one line naming both versions.
    func testLeakreportNamesTheVersionOfASessionItCannotRead() throws {
        let path = try session()
        try DatabaseQueue(path: path).write { db in try db.execute(sql: "UPDATE meta SET value = '1' WHERE key = 'schema_version'") }
        for command in ["oom", "reclaim"] {
            let r = try Run.capture([try BuildProducts.leakreport, command, path])
            XCTAssertEqual(r.status, 1)
            XCTAssertEqual(r.stderr, "leakreport: \(path) has session schema version 1; this leakreport reads version \(SessionSchema.version)\n")
        }
    }

    /// The JSON fields are the row types' columns: the documented names are unchanged, and what the
    /// hand-written JSON structs dropped (the percpu counts) is there.
    func testReportJSONFieldsAreTheColumns() throws {
        let reader = try SessionReader(path: try session())
        let reclaim = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(ReclaimJSON(try ReclaimReport.build(reader)).encoded().utf8)) as? [String: Any])
        let interval = try XCTUnwrap((reclaim["intervals"] as? [[String: Any]])?.first)
        XCTAssertEqual(Set(interval.keys), Set(try TableShape(KernelIntervalRow.self).columns.map(\.name)).subtracting(["slab_kb"]))
        XCTAssertEqual(interval["percpu_allocs"] as? Int, 5)
        XCTAssertEqual(interval["percpu_frees"] as? Int, 6)
        XCTAssertEqual((interval["writepages"] as? NSNumber)?.uint64Value, UInt64.max)
        let direct = try XCTUnwrap(reclaim["direct"] as? [String: Any])
        XCTAssertEqual(Set(direct.keys), ["kind", "count", "total_ns", "max_ns", "reclaimed_pages", "histogram", "top"])
        let staller = try XCTUnwrap((direct["top"] as? [[String: Any]])?.first)
        XCTAssertEqual(Set(staller.keys), ["kind", "pid", "comm", "count", "total_ns", "max_ns"])
        XCTAssertEqual(staller["pid"] as? Int, -5)
        let kswapd = try XCTUnwrap(reclaim["kswapd"] as? [String: Any])
        XCTAssertEqual((kswapd["nodes"] as? [[String: Any]])?.first.map { Set($0.keys) }, ["nid", "wakes", "sleeps"])
        XCTAssertEqual((reclaim["shrinkers"] as? [[String: Any]])?.first.map { Set($0.keys) }, ["name", "calls", "total_ns", "max_ns", "freed"])

        let oom = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(OOMJSON(try OOMReport.build(reader)).encoded().utf8)) as? [String: Any])
        let events = try XCTUnwrap(oom["events"] as? [[String: Any]])
        XCTAssertEqual(events.count, 2)
        let e = events[1]
        let documented: Set<String> = [
            "time", "time_ns", "pid", "tid", "comm", "killed", "uid", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "total_vm_kb", "pgtables_kb",
            "oom_score_adj", "memcg", "memcg_limit_bytes", "memcg_usage_bytes", "trigger", "loadavg", "meminfo", "reclaims_before", "reaper",
        ]
        XCTAssertTrue(documented.isSubset(of: Set(e.keys)), "missing: \(documented.subtracting(e.keys))")
        XCTAssertEqual((e["memcg_limit_bytes"] as? NSNumber)?.uint64Value, UInt64.max)
        XCTAssertEqual(e["killed"] as? Bool, false)
        XCTAssertEqual(e["comm"] as? String, "kworker/ü:1")
        XCTAssertEqual((e["meminfo"] as? [String: NSNumber])?["Huge"]?.uint64Value, UInt64.max)
        XCTAssertEqual((e["trigger"] as? [String: Any])?["pid"] as? Int, 1)
        XCTAssertEqual((e["reclaims_before"] as? [String: NSNumber])?["memcg"]?.uint64Value, UInt64.max - 1)
        // An absent value is an absent field, as before.
        XCTAssertNil(events[0]["uid"])

        // The JSON reads back into the same rows.
        let decoded = try JSONDecoder().decode(OOMJSON.self, from: Data(OOMJSON(try OOMReport.build(reader)).encoded().utf8))
        XCTAssertEqual(decoded.events.map(\.row), try reader.oomEvents())
    }
}
