import GRDB
import SessionStore

/// The kernel tables exactly as session schema version 2 first shipped them (hand-written SQL, before
/// the row types declared them). Sessions written then must still read.
enum ShippedKernelSchemaV2: SchemaPart {
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("kernel-v1") { db in
            try db.execute(sql: """
                -- oom:mark_victim, one row per victim. killed: 1 a kill, 0 an already-exiting task that was
                -- only marked, NULL unknown. meminfo: JSON object of /proc/meminfo in kB when it arrived.
                CREATE TABLE oom_events (
                    id INTEGER PRIMARY KEY,
                    time_ns INTEGER NOT NULL,
                    realtime_ns INTEGER NOT NULL,
                    pid INTEGER NOT NULL,
                    tid INTEGER NOT NULL,
                    comm TEXT NOT NULL,
                    uid INTEGER,
                    total_vm_kb INTEGER,
                    anon_rss_kb INTEGER,
                    file_rss_kb INTEGER,
                    shmem_rss_kb INTEGER,
                    pgtables_kb INTEGER,
                    oom_score_adj INTEGER,
                    killed INTEGER,
                    memcg TEXT,
                    memcg_limit_bytes INTEGER,
                    memcg_usage_bytes INTEGER,
                    trigger_pid INTEGER NOT NULL,
                    trigger_comm TEXT NOT NULL,
                    meminfo TEXT NOT NULL,
                    loadavg TEXT NOT NULL,
                    direct_reclaims_before INTEGER NOT NULL,
                    memcg_reclaims_before INTEGER NOT NULL
                );
                -- The OOM reaper's steps (wake, start, finish, skip) per pid.
                CREATE TABLE oom_reaper (
                    time_ns INTEGER NOT NULL,
                    pid INTEGER NOT NULL,
                    step TEXT NOT NULL
                );
                -- Absolute. kind: 'direct' or 'memcg'.
                CREATE TABLE reclaim_totals (
                    kind TEXT PRIMARY KEY NOT NULL,
                    count INTEGER NOT NULL,
                    total_ns INTEGER NOT NULL,
                    max_ns INTEGER NOT NULL,
                    reclaimed_pages INTEGER NOT NULL
                );
                -- Absolute. bucket b counts latencies in [2^b, 2^(b+1)) ns; b = -1 counts 0 ns.
                CREATE TABLE reclaim_histogram (
                    kind TEXT NOT NULL,
                    bucket INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    PRIMARY KEY (kind, bucket)
                ) WITHOUT ROWID;
                -- Absolute. Per process (tgid) that stalled in reclaim.
                CREATE TABLE reclaim_stallers (
                    kind TEXT NOT NULL,
                    pid INTEGER NOT NULL,
                    comm TEXT NOT NULL,
                    count INTEGER NOT NULL,
                    total_ns INTEGER NOT NULL,
                    max_ns INTEGER NOT NULL,
                    PRIMARY KEY (kind, pid)
                ) WITHOUT ROWID;
                -- Absolute. Per NUMA node.
                CREATE TABLE kswapd (
                    nid INTEGER PRIMARY KEY NOT NULL,
                    wakes INTEGER NOT NULL,
                    sleeps INTEGER NOT NULL
                );
                -- Absolute. name: the shrinker's debug name, or its scan function's symbol.
                CREATE TABLE shrinkers (
                    name TEXT PRIMARY KEY NOT NULL,
                    calls INTEGER NOT NULL,
                    total_ns INTEGER NOT NULL,
                    max_ns INTEGER NOT NULL,
                    freed INTEGER NOT NULL
                );
                -- One row per flush interval: what happened in it (counts and nanoseconds), and memory
                -- from /proc/meminfo (kB) at its end, for trends.
                CREATE TABLE kernel_intervals (
                    time_ns INTEGER PRIMARY KEY NOT NULL,
                    slab_allocs INTEGER NOT NULL,
                    slab_frees INTEGER NOT NULL,
                    page_allocs INTEGER NOT NULL,
                    page_frees INTEGER NOT NULL,
                    percpu_allocs INTEGER NOT NULL,
                    percpu_frees INTEGER NOT NULL,
                    direct_reclaims INTEGER NOT NULL,
                    direct_reclaim_ns INTEGER NOT NULL,
                    memcg_reclaims INTEGER NOT NULL,
                    memcg_reclaim_ns INTEGER NOT NULL,
                    kswapd_wakes INTEGER NOT NULL,
                    shrink_slab_ns INTEGER NOT NULL,
                    writepages INTEGER NOT NULL,
                    mem_free_kb INTEGER,
                    slab_kb INTEGER,
                    sunreclaim_kb INTEGER,
                    anon_kb INTEGER
                );
                -- Every tracepoint the collector tried. status: 'attached', 'missing' (not on this
                -- kernel), 'replaced' (an older name of one that is attached) or 'failed'.
                CREATE TABLE tracepoints (
                    name TEXT PRIMARY KEY NOT NULL,
                    status TEXT NOT NULL,
                    detail TEXT
                );
                """)
        }
    }
}
