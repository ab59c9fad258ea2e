import GRDB

/// A group of tables that belongs together (the core tables, the kernel tables). Each part registers
/// its own migrations, so a source adds its part instead of editing another part's tables.
public protocol SchemaPart {
    static func register(in migrator: inout DatabaseMigrator)
}

/// The session file's schema and the version a reader must find.
///
/// Addresses are unsigned 64-bit values stored in SQLite's signed INTEGER by bit pattern
/// (`Int64(bitPattern:)`), so kernel addresses read as negative numbers in the sqlite3 shell.
/// Times ending in `_ns` are CLOCK_MONOTONIC nanoseconds unless the name says `realtime`.
/// Columns named `*_blob` or `data` are packed with `PackedRows`/`LiveCheckpoint`.
public enum SessionSchema {
    /// Bumped whenever a part changes incompatibly; readers refuse other versions with a line naming both.
    public static let version = 2
    /// SQLite's application_id for session files: "LEAK".
    public static let applicationID: Int32 = 0x4C45_414B

    static func migrator(parts: [any SchemaPart.Type]) -> DatabaseMigrator {
        var m = DatabaseMigrator()
        CoreSchema.register(in: &m)
        for part in parts { part.register(in: &m) }
        return m
    }
}

/// The tables every session has.
enum CoreSchema: SchemaPart {
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("core-v2") { db in
            try db.execute(sql: """
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                );
                -- One row per traced address space: a process image (an exec starts a new one) or the kernel.
                -- command: JSON array. end: 'exited', 'exec', 'detached' or NULL while it runs.
                CREATE TABLE spaces (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    pid INTEGER,
                    command TEXT NOT NULL,
                    start_ns INTEGER NOT NULL,
                    parent INTEGER,
                    sampling_interval INTEGER,
                    end_ns INTEGER,
                    end TEXT
                );
                -- Loaded objects, in the order the collector learned of them.
                CREATE TABLE modules (
                    id INTEGER PRIMARY KEY,
                    space INTEGER NOT NULL,
                    path TEXT NOT NULL,
                    build_id TEXT NOT NULL,
                    bias INTEGER NOT NULL,
                    lo INTEGER NOT NULL,
                    hi INTEGER NOT NULL,
                    loaded_ns INTEGER NOT NULL,
                    unloaded_ns INTEGER
                );
                -- Every function name, system name and file name once.
                CREATE TABLE strings (
                    id INTEGER PRIMARY KEY,
                    text TEXT NOT NULL
                );
                -- One symbolized code address (pprof's Location). lines_blob: (function, system_name, file:
                -- string ids; line), inlined calls first. module: a modules id, or NULL with module_name.
                CREATE TABLE locations (
                    id INTEGER PRIMARY KEY,
                    address INTEGER NOT NULL,
                    module INTEGER,
                    module_name TEXT,
                    file_offset INTEGER,
                    offset INTEGER,
                    lines_blob BLOB NOT NULL
                );
                -- Stacks as a tree (heaptrack's trace tree): a node is a location called from its parent,
                -- the root's parent is 0, so common callers are stored once. Each row packs the nodes one
                -- flush added, ids first .. first + count - 1 (see StackTreeCodec).
                CREATE TABLE stack_tree (
                    first INTEGER PRIMARY KEY,
                    count INTEGER NOT NULL,
                    data BLOB NOT NULL
                );
                -- leaf: the innermost frame's node (0: no frames). origin: 'user' or 'kernel'.
                CREATE TABLE stacks (
                    id INTEGER PRIMARY KEY,
                    space INTEGER NOT NULL,
                    origin TEXT NOT NULL,
                    leaf INTEGER NOT NULL,
                    depth INTEGER NOT NULL,
                    truncated INTEGER NOT NULL,
                    incomplete INTEGER NOT NULL,
                    task_pid INTEGER,
                    task_comm TEXT
                );
                -- Per stack and kind: outstanding now, ever allocated, temporaries, lifetimes of what was
                -- freed, and what it held at the peaks (valid when its epoch is the peak's, see peaks).
                CREATE TABLE stack_totals (
                    stack_id INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    bytes INTEGER NOT NULL,
                    blocks INTEGER NOT NULL,
                    total_bytes INTEGER NOT NULL,
                    total_blocks INTEGER NOT NULL,
                    temporary_blocks INTEGER NOT NULL,
                    temporary_bytes INTEGER NOT NULL,
                    peak_bytes INTEGER NOT NULL,
                    peak_blocks INTEGER NOT NULL,
                    peak_epoch INTEGER NOT NULL,
                    all_peak_bytes INTEGER NOT NULL,
                    all_peak_blocks INTEGER NOT NULL,
                    all_peak_epoch INTEGER NOT NULL,
                    lifetimes_blob BLOB,
                    PRIMARY KEY (stack_id, kind)
                ) WITHOUT ROWID;
                -- The highest outstanding total, over every kind ('all') and per kind, exact to the event.
                CREATE TABLE peaks (
                    dimension TEXT PRIMARY KEY NOT NULL,
                    epoch INTEGER NOT NULL,
                    time_ns INTEGER NOT NULL,
                    bytes INTEGER NOT NULL,
                    blocks INTEGER NOT NULL
                );
                -- One row per flush: outstanding per kind, the traced process's RSS, and the new totals of
                -- the stacks that changed in the interval (a stack absent kept its previous value).
                CREATE TABLE intervals (
                    time_ns INTEGER PRIMARY KEY,
                    outstanding_blob BLOB NOT NULL,
                    rss_bytes INTEGER,
                    history_blob BLOB NOT NULL
                );
                -- Live blocks and regions, per space, kind and 4 MiB address window: a base row (seq 0 or
                -- the latest compaction) and the deltas after it (see LiveCheckpoint).
                CREATE TABLE live_chunks (
                    space INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    chunk INTEGER NOT NULL,
                    seq INTEGER NOT NULL,
                    base INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (space, kind, chunk, seq)
                ) WITHOUT ROWID;
                CREATE TABLE counters (
                    name TEXT PRIMARY KEY NOT NULL,
                    value INTEGER NOT NULL
                );
                """)
        }
    }
}
