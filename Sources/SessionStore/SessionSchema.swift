import GRDB

/// A group of tables that belongs together (the core tables, the kernel tables). Each part registers
/// its own migrations, so a new source adds a part instead of editing another part's tables.
public protocol SchemaPart {
    static func register(in migrator: inout DatabaseMigrator)
}

/// The session file's schema: every part, in order, and the version a reader must find.
///
/// Addresses are unsigned 64-bit values stored in SQLite's signed INTEGER by bit pattern
/// (`Int64(bitPattern:)`), so kernel addresses read as negative numbers in the sqlite3 shell.
/// Times ending in `_ns` are CLOCK_MONOTONIC nanoseconds unless the name says `realtime`.
public enum SessionSchema {
    /// Bumped whenever a part changes incompatibly; readers refuse other versions.
    public static let version = 1
    /// SQLite's application_id for session files: "LEAK".
    public static let applicationID: Int32 = 0x4C45_414B

    static let parts: [any SchemaPart.Type] = [CoreSchema.self, KernelSchema.self]

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        for part in parts { part.register(in: &m) }
        return m
    }
}

/// The tables every session has: metadata, modules, stacks and frames, live blocks, per-stack totals,
/// snapshots and counters.
enum CoreSchema: SchemaPart {
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("core-v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                );
                -- One row per loaded object, in the order the collector learned of them.
                CREATE TABLE modules (
                    id INTEGER PRIMARY KEY,
                    path TEXT NOT NULL,
                    build_id TEXT NOT NULL,
                    bias INTEGER NOT NULL,
                    lo INTEGER NOT NULL,
                    hi INTEGER NOT NULL,
                    loaded_ns INTEGER NOT NULL,
                    unloaded_ns INTEGER
                );
                -- origin: 'user' or 'kernel'.
                CREATE TABLE stacks (
                    id INTEGER PRIMARY KEY,
                    origin TEXT NOT NULL,
                    depth INTEGER NOT NULL,
                    truncated INTEGER NOT NULL
                );
                -- Symbolized frames, innermost first. address is the return address; file and line are
                -- those of address - 1, the call instruction.
                CREATE TABLE frames (
                    stack_id INTEGER NOT NULL,
                    idx INTEGER NOT NULL,
                    address INTEGER NOT NULL,
                    function TEXT,
                    offset INTEGER,
                    module TEXT,
                    file TEXT,
                    line INTEGER,
                    PRIMARY KEY (stack_id, idx)
                ) WITHOUT ROWID;
                -- Outstanding bytes and blocks per stack and kind, and everything ever allocated there.
                CREATE TABLE stack_totals (
                    stack_id INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    bytes INTEGER NOT NULL,
                    blocks INTEGER NOT NULL,
                    total_bytes INTEGER NOT NULL,
                    total_blocks INTEGER NOT NULL,
                    PRIMARY KEY (stack_id, kind)
                ) WITHOUT ROWID;
                -- Blocks and regions still allocated at the last flush (at the end: when the session ended).
                CREATE TABLE live (
                    kind TEXT NOT NULL,
                    address INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    stack_id INTEGER NOT NULL,
                    time_ns INTEGER NOT NULL,
                    function TEXT NOT NULL,
                    tid INTEGER NOT NULL,
                    backing TEXT,
                    pid INTEGER,
                    comm TEXT,
                    PRIMARY KEY (kind, address)
                ) WITHOUT ROWID;
                CREATE INDEX live_by_stack ON live (stack_id);
                -- Per-stack outstanding totals every interval, for the stacks that changed in it; a stack
                -- absent from a snapshot kept its previous value.
                CREATE TABLE snapshots (
                    time_ns INTEGER NOT NULL,
                    stack_id INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    bytes INTEGER NOT NULL,
                    blocks INTEGER NOT NULL,
                    PRIMARY KEY (time_ns, stack_id, kind)
                ) WITHOUT ROWID;
                CREATE TABLE counters (
                    name TEXT PRIMARY KEY NOT NULL,
                    value INTEGER NOT NULL
                );
                """)
        }
    }
}
