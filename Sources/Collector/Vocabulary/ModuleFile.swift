import Glibc

/// An open read-only descriptor of a module's file, opened while the traced process lives so the module
/// still symbolizes after it is unloaded, deleted or replaced on disk.
///
/// The traced process is not trusted (the collector may be root, the app not): a path it reports is
/// never simply `open`ed. The file is reached through what the process really maps,
/// `/proc/PID/map_files/LO-HI` (root, or the process's own user with CAP_SYS_ADMIN), else through
/// `/proc/PID/root` + path (a container's own view of its files), else the path itself; each candidate is
/// opened `O_PATH` first and reopened for reading only when it is a regular file, so a hostile path can
/// neither make the collector open a device nor block it on a FIFO.
public final class ModuleFile: Sendable {
    public let fd: Int32
    /// How the file was reached, for diagnostics.
    public let via: String

    /// O_PATH (Linux, every architecture but a few); Glibc's Swift overlay does not export it.
    static let oPath: Int32 = 0o10000000

    private init(fd: Int32, via: String) {
        self.fd = fd
        self.via = via
    }

    deinit { close(fd) }

    /// Opens `path` as a regular file without following it into anything else; nil otherwise.
    public static func open(regularFileAt path: String) -> ModuleFile? {
        let probe = Glibc.open(path, oPath | O_CLOEXEC)
        guard probe >= 0 else { return nil }
        defer { close(probe) }
        var st = stat()
        guard fstat(probe, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        // Reopening the O_PATH descriptor reads exactly the inode just checked, not whatever the path names now.
        let fd = Glibc.open("/proc/self/fd/\(probe)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        return ModuleFile(fd: fd, via: path)
    }

}
