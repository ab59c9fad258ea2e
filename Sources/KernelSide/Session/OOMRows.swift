import SessionStore

/// One OOM victim (oom:mark_victim) and the system's state when it was chosen.
public struct OOMEventRow: KernelTableRow, Equatable {
    /// CLOCK_MONOTONIC and CLOCK_REALTIME nanoseconds of the event.
    public var timeNs: UInt64
    public var realtimeNs: UInt64
    /// The victim's process (tgid) and the thread that was marked.
    public var pid: Int32
    public var tid: Int32
    public var comm: String
    public var uid: UInt32?
    public var totalVmKB: UInt64?
    public var anonRssKB: UInt64?
    public var fileRssKB: UInt64?
    public var shmemRssKB: UInt64?
    public var pgtablesKB: UInt64?
    public var oomScoreAdj: Int32?
    /// true: the OOM killer killed it; false: it was already exiting and was only marked; nil: unknown.
    public var killed: Bool?
    /// The victim's memory cgroup path within its hierarchy ("/" for the root).
    public var memcg: String?
    /// nil when the cgroup has no limit or it is unknown.
    public var memcgLimitBytes: UInt64?
    public var memcgUsageBytes: UInt64?
    /// The task that ran the OOM killer (its allocation failed).
    public var triggerPid: Int32
    public var triggerComm: String
    /// /proc/meminfo in kB, read when the event arrived.
    public var meminfo: [String: UInt64]
    /// /proc/loadavg as the kernel printed it.
    public var loadavg: String
    /// Reclaims that had completed in the session before this event.
    public var directReclaimsBefore: UInt64
    public var memcgReclaimsBefore: UInt64

    public init(
        timeNs: UInt64, realtimeNs: UInt64, pid: Int32, tid: Int32, comm: String, uid: UInt32? = nil, totalVmKB: UInt64? = nil,
        anonRssKB: UInt64? = nil, fileRssKB: UInt64? = nil, shmemRssKB: UInt64? = nil, pgtablesKB: UInt64? = nil,
        oomScoreAdj: Int32? = nil, killed: Bool? = nil, memcg: String? = nil, memcgLimitBytes: UInt64? = nil,
        memcgUsageBytes: UInt64? = nil, triggerPid: Int32, triggerComm: String, meminfo: [String: UInt64], loadavg: String,
        directReclaimsBefore: UInt64, memcgReclaimsBefore: UInt64
    ) {
        self.timeNs = timeNs
        self.realtimeNs = realtimeNs
        self.pid = pid
        self.tid = tid
        self.comm = comm
        self.uid = uid
        self.totalVmKB = totalVmKB
        self.anonRssKB = anonRssKB
        self.fileRssKB = fileRssKB
        self.shmemRssKB = shmemRssKB
        self.pgtablesKB = pgtablesKB
        self.oomScoreAdj = oomScoreAdj
        self.killed = killed
        self.memcg = memcg
        self.memcgLimitBytes = memcgLimitBytes
        self.memcgUsageBytes = memcgUsageBytes
        self.triggerPid = triggerPid
        self.triggerComm = triggerComm
        self.meminfo = meminfo
        self.loadavg = loadavg
        self.directReclaimsBefore = directReclaimsBefore
        self.memcgReclaimsBefore = memcgReclaimsBefore
    }

    public static let tableName = "oom_events"
    public static let primaryKey: [CodingKeys] = []
    public static let tableNote = """
        oom:mark_victim, one row per victim. killed: 1 a kill, 0 an already-exiting task that was only marked, \
        NULL unknown. meminfo: JSON object of /proc/meminfo in kB when it arrived.
        """
    public typealias Column = CodingKeys
    /// In column order: the synthesized decoding asks for them in this order, and so `TableShape` lists them.
    public enum CodingKeys: String, CodingKey {
        case timeNs = "time_ns"
        case realtimeNs = "realtime_ns"
        case pid, tid, comm, uid
        case totalVmKB = "total_vm_kb"
        case anonRssKB = "anon_rss_kb"
        case fileRssKB = "file_rss_kb"
        case shmemRssKB = "shmem_rss_kb"
        case pgtablesKB = "pgtables_kb"
        case oomScoreAdj = "oom_score_adj"
        case killed, memcg
        case memcgLimitBytes = "memcg_limit_bytes"
        case memcgUsageBytes = "memcg_usage_bytes"
        case triggerPid = "trigger_pid"
        case triggerComm = "trigger_comm"
        case meminfo, loadavg
        case directReclaimsBefore = "direct_reclaims_before"
        case memcgReclaimsBefore = "memcg_reclaims_before"
    }
}

/// A step of the OOM reaper for one pid.
public struct OOMReaperRow: KernelTableRow, Equatable {
    /// What the reaper did; the raw values are the session's and the JSON's spelling.
    public enum Step: String, Sendable, CaseIterable, ColumnValue {
        case wake, start, finish, skip
    }

    public var timeNs: UInt64
    public var pid: Int32
    public var step: Step

    public init(timeNs: UInt64, pid: Int32, step: Step) {
        self.timeNs = timeNs
        self.pid = pid
        self.step = step
    }

    public static let tableName = "oom_reaper"
    public static let primaryKey: [CodingKeys] = []
    public static let tableNote = "The OOM reaper's steps (wake, start, finish, skip) per pid."
    public typealias Column = CodingKeys
    public enum CodingKeys: String, CodingKey {
        case timeNs = "time_ns"
        case pid, step
    }
}

