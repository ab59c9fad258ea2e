import Glibc

/// One line of /proc/PID/maps.
public struct ProcMapping: Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    public var readable: Bool
    public var writable: Bool
    public var executable: Bool
    public var shared: Bool
    public var offset: UInt64
    public var inode: UInt64
    /// The path, a pseudo-name ("[heap]", "[vdso]"), or empty for anonymous memory. A deleted file's
    /// path keeps the kernel's " (deleted)" suffix.
    public var path: String

    public init(
        start: UInt64, end: UInt64, readable: Bool = true, writable: Bool = false, executable: Bool = false, shared: Bool = false,
        offset: UInt64 = 0, inode: UInt64 = 0, path: String = ""
    ) {
        self.start = start
        self.end = end
        self.readable = readable
        self.writable = writable
        self.executable = executable
        self.shared = shared
        self.offset = offset
        self.inode = inode
        self.path = path
    }

    /// The mapping's name in /proc/PID/map_files.
    public var mapFilesName: String { String(start, radix: 16) + "-" + String(end, radix: 16) }

    /// A file mapping (not anonymous memory, not a pseudo-name).
    public var isFile: Bool { inode != 0 && path.hasPrefix("/") }
}

/// Parses /proc/PID/maps. Lines that do not parse are skipped: the format is the kernel's, but the
/// text is read from a file the collector does not control.
public enum ProcMaps {
    public static func parse(_ text: String) -> [ProcMapping] {
        var out: [ProcMapping] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let m = parseLine(line) { out.append(m) }
        }
        return out
    }

    static func parseLine(_ line: Substring) -> ProcMapping? {
        // address perms offset dev inode [path]; the path may contain spaces.
        var fields: [Substring] = []
        var rest = line[...]
        for _ in 0..<5 {
            rest = rest.drop { $0 == " " }
            guard let end = rest.firstIndex(of: " ") ?? (rest.isEmpty ? nil : rest.endIndex) else { return nil }
            fields.append(rest[..<end])
            rest = rest[end...]
        }
        let path = String(rest.drop { $0 == " " })
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16), start < end else { return nil }
        let perms = Array(fields[1].utf8)
        guard perms.count == 4, let offset = UInt64(fields[2], radix: 16), let inode = UInt64(fields[4]) else { return nil }
        return ProcMapping(
            start: start, end: end, readable: perms[0] == UInt8(ascii: "r"), writable: perms[1] == UInt8(ascii: "w"),
            executable: perms[2] == UInt8(ascii: "x"), shared: perms[3] == UInt8(ascii: "s"), offset: offset, inode: inode, path: path)
    }

    /// The mappings of a live process; nil when it is gone or unreadable.
    public static func read(pid: Int32) -> [ProcMapping]? {
        ProcFile.read("/proc/\(pid)/maps").map(parse)
    }
}

extension ModuleFile {
    /// The file a process really maps inside [lo, hi), whatever path it claims: through
    /// /proc/PID/map_files (root), else the mapped path inside the process's own root directory. A module
    /// the process no longer maps there (unloaded before its record was read), or a process that is gone,
    /// leaves only the claimed path (inside the process's root while it lives): that is opened only if it
    /// is an ELF file the process itself could read (`owner`, captured while it lived), so a root collector
    /// never opens on the app's word what the app could not read (/root/secret.so); the symbolizer still
    /// checks its build-id.
    public static func open(pid: Int32, claimedPath: String, lo: UInt64, hi: UInt64, maps: [ProcMapping]?, owner: ProcessOwner?) -> ModuleFile? {
        if let m = maps?.first(where: { $0.isFile && $0.start < hi && lo < $0.end }) { return open(pid: pid, mapping: m) }
        guard let owner, claimedPath.hasPrefix("/") else { return nil }
        // A live process's path means what it means in its own root (a container's); a gone one has none left.
        let candidates = maps != nil ? ["/proc/\(pid)/root" + claimedPath, claimedPath] : [claimedPath]
        for path in candidates {
            guard let f = openELF(path) else { continue }
            var st = stat()
            return fstat(f.fd, &st) == 0 && owner.mayRead(st) ? f : nil
        }
        return nil
    }

    /// The file behind one mapping of a live process.
    public static func open(pid: Int32, mapping m: ProcMapping) -> ModuleFile? {
        if let f = open(regularFileAt: "/proc/\(pid)/map_files/\(m.mapFilesName)") { return f }
        let real = m.path.hasSuffix(" (deleted)") ? String(m.path.dropLast(10)) : m.path
        return open(regularFileAt: "/proc/\(pid)/root\(real)")
    }

    /// A regular file that starts like an ELF object, or nil.
    public static func openELF(_ path: String) -> ModuleFile? {
        guard path.hasPrefix("/"), let f = open(regularFileAt: path) else { return nil }
        var magic = [UInt8](repeating: 0, count: 4)
        guard pread(f.fd, &magic, 4, 0) == 4, magic == [0x7f, 0x45, 0x4c, 0x46] else { return nil }
        return f
    }
}
