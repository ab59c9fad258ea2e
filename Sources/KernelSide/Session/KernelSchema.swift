import GRDB
import SessionStore
import Vocabulary

/// The kernel side's tables: OOM kills with their context, reclaim latency and stallers, kswapd,
/// shrinkers, per-interval kernel snapshots, and which tracepoints the collection had. Every session
/// has them (empty outside kernel mode), so readers never need to ask whether they exist.
///
/// Each table is declared once, by its row type (`KernelTableRow`); the SQL here is built from them.
/// Tables noted "absolute" hold running totals that each flush replaces; the others only grow.
public enum KernelSchema: SchemaPart {
    public static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("kernel-v1") { db in
            for table in KernelRows.tables { try db.execute(sql: try TableShape(table).createSQL) }
        }
    }
}
