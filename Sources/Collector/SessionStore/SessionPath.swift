import Foundation

/// Decides, before anything starts, whether a session may be written at a path, and makes room for it.
///
/// The collector may run as root: `-o` must never replace or delete anything that is not a session.
/// An existing *session file* is kept as `PATH.old`, the way perf keeps perf.data.old, and only over an
/// older session file; a directory, a device, a FIFO, a symbolic link or any other file is refused in one
/// line, touching nothing.
public enum SessionPath {
    /// Checks `path`; throws the one-line reason it cannot be used. Changes nothing.
    public static func check(_ path: String) throws(SessionError) {
        guard !path.isEmpty else { throw .cannotCreate(path: path, detail: "the session path is empty") }
        guard !path.hasSuffix("/") else { throw .cannotCreate(path: path, detail: "it names a directory; give a file name") }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var st = stat()
        guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw .cannotCreate(path: path, detail: "no such directory \(dir)")
        }
        guard access(dir, W_OK | X_OK) == 0 else { throw .cannotCreate(path: path, detail: "\(dir) is not writable") }
        for (p, what) in [(path, "it"), (path + ".old", "\(path).old")] {
            if let problem = try notASession(p) {
                throw .cannotCreate(path: path, detail: "\(what) exists and \(problem); not replacing it")
            }
        }
        for suffix in ["-wal", "-shm"] {
            for base in [path, path + ".old"] {
                var s = stat()
                if lstat(base + suffix, &s) == 0, s.st_mode & S_IFMT != S_IFREG {
                    throw .cannotCreate(path: path, detail: "\(base + suffix) exists and is not a regular file; not replacing it")
                }
            }
        }
    }

    /// Checks `path` again and moves an existing session (and its -wal/-shm) to `PATH.old`.
    public static func prepare(_ path: String) throws(SessionError) {
        try check(path)
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        let old = path + ".old"
        for suffix in ["", "-wal", "-shm"] { unlink(old + suffix) }
        for suffix in ["", "-wal", "-shm"] where lstat(path + suffix, &st) == 0 {
            guard rename(path + suffix, old + suffix) == 0 else {
                throw .cannotCreate(path: path, detail: "cannot keep the earlier session as \(old + suffix): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// nil when `path` does not exist or is a session file; otherwise what it is instead.
    private static func notASession(_ path: String) throws(SessionError) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return "is a directory"
        case S_IFLNK: return "is a symbolic link"
        case S_IFCHR, S_IFBLK: return "is a device"
        case S_IFIFO: return "is a FIFO"
        case S_IFSOCK: return "is a socket"
        default: return "is not a regular file"
        }
        return isSessionFile(path) ? nil : "is not a leak session"
    }

    /// True for an SQLite file carrying the session application id (an empty file counts: a session whose
    /// collector died before its first write).
    public static func isSessionFile(_ path: String) -> Bool {
        // O_NONBLOCK: even a file that turned into a FIFO since lstat cannot block us.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return false }
        if st.st_size == 0 { return true }
        var header = [UInt8](repeating: 0, count: 72)
        guard pread(fd, &header, 72, 0) == 72, header.starts(with: Array("SQLite format 3\0".utf8)) else { return false }
        let appID = header[68..<72].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return Int32(bitPattern: appID) == SessionSchema.applicationID
    }
}
