import Foundation

/// The SQLite header checks a session gets before SQLite opens it. SQLite notices a truncated file only
/// when a query touches a missing page, which can leave a report silently short; the header says how
/// many pages the file must have.
enum SessionHeader {
    static let length = 100

    /// Checks the file at `path` (its first bytes, its size, and whether a -wal lies beside it).
    static func checkFile(_ path: String) throws(SessionError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .corrupt(path: path, detail: "cannot open for reading: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: length)
        let n = pread(fd, &header, length, 0)
        guard n >= 0 else { throw .notASession(path: path, reason: "not an SQLite file") }
        var st = stat()
        let size = fstat(fd, &st) == 0 ? UInt64(max(st.st_size, 0)) : 0
        var wal = stat()
        let hasWAL = stat(path + "-wal", &wal) == 0 && wal.st_size > 0
        try check(Array(header.prefix(n)), size: size, hasWAL: hasWAL, path: path)
    }

    /// Checks `header` (the file's first bytes, up to `length`) against the file's `size`; `hasWAL`: a
    /// non-empty -wal lies beside it, which may hold pages the file does not have yet.
    static func check(_ header: [UInt8], size: UInt64, hasWAL: Bool, path: String) throws(SessionError) {
        guard header.count >= length, header.starts(with: "SQLite format 3\0".utf8) else {
            if header.isEmpty { throw .corrupt(path: path, detail: "the file is empty (its collector died before writing anything)") }
            throw .notASession(path: path, reason: "not an SQLite file")
        }
        func be32(_ at: Int) -> UInt32 { header[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        var pageSize = UInt64(header[16]) << 8 | UInt64(header[17])
        if pageSize == 1 { pageSize = 65536 }
        let pages = UInt64(be32(28))
        // The in-header page count is only authoritative when "version-valid-for" matches the change counter.
        let valid = be32(92) == be32(24)
        if valid, pages > 0, size < pages * pageSize, !hasWAL {
            throw .corrupt(path: path, detail: "truncated: \(size) bytes, its header says \(pages * pageSize)")
        }
        if size < pageSize && !hasWAL {
            // A WAL-mode file whose writer never checkpointed holds its data only in PATH-wal.
            throw .corrupt(path: path, detail: "only \(size) bytes and no \(URL(fileURLWithPath: path).lastPathComponent)-wal beside it: its data is missing")
        }
    }
}
