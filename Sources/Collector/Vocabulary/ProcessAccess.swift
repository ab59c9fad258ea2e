import Glibc

/// Who owns a process, and whether this collector may trace it: the kernel's ptrace_may_access rule for
/// reading (what /proc/PID/fd, /proc/PID/maps and map_files need), checked first so a refusal is one
/// line that says why instead of a permission error on some /proc file.
public struct ProcessOwner: Sendable, Equatable {
    /// Real, effective and saved user ids; the same for groups.
    public var uids: [UInt32]
    public var gids: [UInt32]
    /// The ids the kernel checks file access with (the fourth of each line), and the supplementary groups.
    public var fsUID: UInt32 = 0
    public var fsGID: UInt32 = 0
    public var groups: [UInt32] = []

    /// The owner of a live process, from /proc/PID/status; nil when it is gone.
    public static func of(pid: Int32) -> ProcessOwner? {
        ProcFile.read("/proc/\(pid)/status").flatMap(parse(status:))
    }

    /// The ids of /proc/PID/status text; nil unless both lines hold three ids.
    public static func parse(status text: String) -> ProcessOwner? {
        let lines = text.split(separator: "\n")
        func ids(_ field: String, _ count: Int) -> [UInt32] {
            guard let line = lines.first(where: { $0.hasPrefix(field) }) else { return [] }
            return line.dropFirst(field.count).split(whereSeparator: { $0 == "\t" || $0 == " " }).prefix(count).compactMap { UInt32($0) }
        }
        let u = ids("Uid:", 4), g = ids("Gid:", 4)
        guard u.count >= 3, g.count >= 3 else { return nil }
        var o = ProcessOwner(uids: Array(u.prefix(3)), gids: Array(g.prefix(3)))
        o.fsUID = u.count == 4 ? u[3] : u[1]
        o.fsGID = g.count == 4 ? g[3] : g[1]
        o.groups = ids("Groups:", 65536)
        return o
    }

    /// Whether the process could open a file with this status for reading itself: the owner, group and
    /// other read bits against its file-system ids (root reads anything). What a collector running as root
    /// opens on the process's word alone must be what the process could have read anyway.
    public func mayRead(_ st: stat) -> Bool {
        if fsUID == 0 { return true }
        if st.st_uid == fsUID { return st.st_mode & S_IRUSR != 0 }
        if st.st_gid == fsGID || groups.contains(st.st_gid) { return st.st_mode & S_IRGRP != 0 }
        return st.st_mode & S_IROTH != 0
    }

    /// The process's user (its real uid).
    public var uid: UInt32 { uids.first ?? 0 }

    /// Why this collector may not trace the process, or nil if it may: root (CAP_SYS_PTRACE) may trace
    /// anything; anyone else only processes whose every user and group id is their own.
    public func refusal(pid: Int32) -> String? {
        if geteuid() == 0 { return nil }
        let me = UInt32(geteuid()), group = UInt32(getegid())
        if uids.allSatisfy({ $0 == me }) && gids.allSatisfy({ $0 == group }) { return nil }
        if uids.contains(where: { $0 != uids[0] }) {
            return "pid \(pid) changed its user ids (setuid: \(uids.map(String.init).joined(separator: "/"))): only root may trace it"
        }
        return "pid \(pid) belongs to uid \(uid), not to you (uid \(me)): you may trace only your own processes; run as uid \(uid) or as root"
    }
}
