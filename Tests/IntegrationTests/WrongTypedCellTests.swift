import Foundation
import TestSupport
import XCTest

/// Any cell of a core table of a real session replaced by a value of the wrong type (text, blob): `top`,
/// reading every table it can (per-block data and frames included), either still works (the column is not
/// one it reads) or says in one line that the session is corrupt. None crashes (GRDB's non-throwing
/// accessors used to die with SIGILL on such a cell). The kernel tables have their own exhaustive test.
final class WrongTypedCellTests: XCTestCase {
    func testEveryColumnOfEveryTableWithEveryWrongType() throws {
        let prog = try CProgram.build(
            "cells",
            source: """
                #include <stdlib.h>
                #include <sys/mman.h>
                void *leak(int n) { return malloc(100 + n); }
                int main(void) {
                    for (int i = 0; i < 20; i++) leak(i);
                    mmap(0, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                    return 0;
                }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let sqlite = ["/usr/bin/sqlite3", run.session]
        let tables = try Run.capture(sqlite + ["SELECT name FROM sqlite_master WHERE type = 'table'"]).stdout
            .split(separator: "\n").map(String.init)
        XCTAssertGreaterThan(tables.count, 10)
        let kernelTables: Set<String> = ["oom_events", "oom_reaper", "kswapd", "shrinkers", "kernel_intervals", "tracepoints"]
        let reports: [[String]] = [["top", "--min-size", "1", "--addresses"]]
        var checked = 0
        for table in tables where !kernelTables.contains(table) && !table.hasPrefix("reclaim_") && !table.hasPrefix("grdb_") {
            let columns = try Run.capture(sqlite + ["SELECT name FROM pragma_table_info('\(table)')"]).stdout.split(separator: "\n")
            for column in columns {
                for bad in ["'abc'", "X'00ff'"] {
                    let copy = run.session + ".cell"
                    try? FileManager.default.removeItem(atPath: copy)
                    _ = try Run.capture(sqlite + [".backup '\(copy)'"])
                    let update = try Run.capture(["/usr/bin/sqlite3", copy, "UPDATE \(table) SET \(column) = \(bad)"])
                    // Rowid and NOT NULL constraints refuse some values: nothing to check then.
                    if update.status != 0 { continue }
                    for args in reports {
                        let r = try Run.capture([try BuildProducts.leakreport] + args + [copy])
                        XCTAssertEqual(r.signal, 0, "\(table).\(column) = \(bad): leakreport \(args) crashed: \(r.stderr)")
                        if r.status != 0 {
                            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(table).\(column) = \(bad), \(args): \(r.stderr)")
                            XCTAssertTrue(r.stderr.hasPrefix("leakreport: "), "\(table).\(column) = \(bad): \(r.stderr)")
                        }
                    }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 60)
    }
}

/// A row that names another that is not there reads as a corrupt session, not as frames without module.
final class DanglingReferenceTests: XCTestCase {
    func testALocationNamingAMissingModuleIsACorruptSession() throws {
        let prog = try CProgram.build(
            "dangling",
            source: """
                #include <stdlib.h>
                void *leak(void) { return malloc(123); }
                int main(void) { return leak() ? 0 : 1; }
                """)
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let before = try Run.capture([try BuildProducts.leakreport, "top", run.session])
        XCTAssertEqual(before.status, 0, before.stderr)
        XCTAssertTrue(before.stdout.contains("[dangling]"), before.stdout)
        let deleted = try Run.capture(["/usr/bin/sqlite3", run.session, "DELETE FROM modules WHERE path LIKE '%dangling'; SELECT changes()"])
        XCTAssertEqual(deleted.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "1", deleted.stderr)
        for args in [["top"], ["top", "--format", "json"], ["folded", "-o", run.session + ".folded"]] {
            let r = try Run.capture([try BuildProducts.leakreport] + args + [run.session])
            XCTAssertNotEqual(r.status, 0, "\(args): \(r.stdout)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("corrupt") && r.stderr.contains("which is missing"), "\(args): \(r.stderr)")
        }
    }
}
