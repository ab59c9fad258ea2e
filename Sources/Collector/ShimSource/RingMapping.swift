import Glibc
import RingFormat

/// The leakshim ring of one process, found through /proc, checked, and mapped: the header, then the data
/// region twice back to back so a record never wraps. The process is untrusted: every header fact this
/// type exposes was copied and validated once; only the protocol's atomics are read from shared memory
/// afterwards.
public final class RingMapping: @unchecked Sendable {
    /// The pid this ring was opened for.
    public let pid: Int32
    /// The pid the shim wrote into the header (differs from `pid` inside another pid namespace).
    public let ringPID: Int32
    public let dataSize: UInt64
    public let maxDepth: UInt32
    public let flags: UInt32
    /// The shim's sampling interval in bytes (nil: every allocation is recorded).
    public let sampleBytes: UInt64?
    public let startRealtimeNs: UInt64
    public let startMonotonicNs: UInt64
    /// The shared header. Read only its atomics (cursor, read_pos, reader fields, counters).
    public let header: UnsafeMutablePointer<lr_header>
    /// The data region; `data ..< data + 2 * dataSize` is mapped.
    public let data: UnsafeMutableRawPointer
    private let base: UnsafeMutableRawPointer
    private let length: Int
    private let fd: Int32

    /// What /proc shows as the target of the ring's descriptor or mapping.
    public static let linkName = "/memfd:\(LR_MEMFD_NAME) (deleted)"

    /// Validates and maps an open ring descriptor. Takes ownership of `fd`: it is closed on failure too.
    public init(fd: Int32, pid: Int32) throws(RingError) {
        var ok = false
        defer { if !ok { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .system(pid: pid, call: "fstat", errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(pid: pid) }
        let seals = lr_get_seals(fd)
        guard seals >= 0, seals & Int32(LR_SEALS_REQUIRED) == Int32(LR_SEALS_REQUIRED) else { throw .notSealed(pid: pid) }
        let fileSize = UInt64(max(st.st_size, 0))
        var h = lr_header()
        let headerBytes = MemoryLayout<lr_header>.size
        guard fileSize >= UInt64(LR_HEADER_SIZE), pread(fd, &h, headerBytes, 0) == headerBytes else {
            throw .sizeMismatch(pid: pid, fileSize: fileSize, expected: UInt64(LR_HEADER_SIZE))
        }
        guard h.magic == LR_MAGIC else { throw .badMagic(pid: pid, found: h.magic) }
        guard h.version == LR_VERSION else { throw .unsupportedVersion(pid: pid, found: h.version) }
        guard h.header_size == LR_HEADER_SIZE else { throw .badHeaderSize(pid: pid, found: h.header_size) }
        let size = h.data_size
        guard size >= UInt64(LR_MIN_DATA_SIZE), size <= UInt64(LR_MAX_DATA_SIZE), size & (size &- 1) == 0 else {
            throw .badDataSize(pid: pid, found: size)
        }
        guard h.max_depth <= LR_MAX_DEPTH else { throw .badMaxDepth(pid: pid, found: h.max_depth) }
        let expected = UInt64(LR_HEADER_SIZE) + size
        guard fileSize == expected else { throw .sizeMismatch(pid: pid, fileSize: fileSize, expected: expected) }

        let hdr = Int(LR_HEADER_SIZE), data = Int(size)
        length = hdr + 2 * data
        guard let reserved = mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
            reserved != MAP_FAILED
        else { throw .system(pid: pid, call: "mmap", errno: errno) }
        let rw = PROT_READ | PROT_WRITE
        guard mmap(reserved, hdr + data, rw, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED,
            mmap(reserved + hdr + data, data, rw, MAP_SHARED | MAP_FIXED, fd, off_t(hdr)) != MAP_FAILED
        else {
            let err = errno
            munmap(reserved, length)
            throw .system(pid: pid, call: "mmap", errno: err)
        }
        self.pid = pid
        self.fd = fd
        base = reserved
        header = reserved.bindMemory(to: lr_header.self, capacity: 1)
        self.data = reserved + hdr
        dataSize = size
        maxDepth = h.max_depth
        flags = h.flags
        sampleBytes = h.sample_bytes == 0 ? nil : h.sample_bytes
        ringPID = h.pid
        startRealtimeNs = h.start_realtime_ns
        startMonotonicNs = h.start_monotonic_ns
        ok = true
    }

    deinit {
        munmap(base, length)
        close(fd)
    }

    /// Finds the ring of `pid`: a descriptor in /proc/PID/fd that names the shim's memfd, or, if the app
    /// closed it, one of its mappings in /proc/PID/map_files (root only). Prefers a ring whose header
    /// names `pid` itself over one inherited from a parent.
    public static func open(pid: Int32) throws(RingError) -> RingMapping {
        var paths = try links(in: "/proc/\(pid)/fd", pid: pid)
        // Every mapping of the ring names the same file: one is enough. Unreadable without root: then no ring.
        if paths.isEmpty, let mapped = try? links(in: "/proc/\(pid)/map_files", pid: pid), let first = mapped.first {
            // A ring created between the two listings has a descriptor too, and that is what an unprivileged
            // collector can open (map_files needs CAP_SYS_ADMIN): look again before falling back.
            paths = try links(in: "/proc/\(pid)/fd", pid: pid)
            if paths.isEmpty { paths = [first] }
        }
        var firstError: RingError?
        var fallback: RingMapping?
        for path in paths {
            let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
            if fd < 0 {
                let err = errno
                if err == EACCES || err == EPERM { firstError = firstError ?? .permissionDenied(pid: pid, path: path) }
                continue  // ENOENT: closed since we listed it
            }
            do {
                let ring = try RingMapping(fd: fd, pid: pid)
                if ring.ringPID == pid { return ring }
                fallback = fallback ?? ring
            } catch {
                firstError = firstError ?? error
            }
        }
        if let fallback { return fallback }
        throw firstError ?? .noRing(pid: pid)
    }

    /// Waits for a process the caller just launched to create its ring: polls every `poll`, gives up after
    /// `timeout`, and reports at once when the process exits first.
    public static func waitForRing(
        pid: Int32, timeout: Duration, poll: Duration = .milliseconds(1)
    ) throws(RingError) -> RingMapping {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                return try open(pid: pid)
            } catch {
                switch error {
                case .noRing, .notSealed, .badMagic(_, found: 0):
                    break  // not created yet, or half-way through creation
                case .noSuchProcess:
                    throw .exitedBeforeRing(pid: pid)
                default:
                    throw error
                }
            }
            if !isAlive(pid: pid) { throw .exitedBeforeRing(pid: pid) }
            if ContinuousClock.now >= deadline {
                let (s, atto) = timeout.components
                throw .ringTimeout(pid: pid, milliseconds: Int(s * 1000 + atto / 1_000_000_000_000_000))
            }
            let (ps, patto) = poll.components
            var ts = timespec(tv_sec: Int(ps), tv_nsec: Int(patto / 1_000_000_000))
            nanosleep(&ts, nil)
        }
    }

    /// False once the process is gone or a zombie (a launched child stays in /proc until it is reaped).
    public static func isAlive(pid: Int32) -> Bool {
        guard let f = fopen("/proc/\(pid)/stat", "r") else { return false }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 512)
        guard fgets(&buf, Int32(buf.count), f) != nil else { return false }
        let line = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let paren = line.lastIndex(of: ")") else { return false }
        let state = line[line.index(after: paren)...].first { $0 != " " }
        return state != "Z" && state != "X" && state != "x"
    }

    /// The entries of a /proc directory whose link target is the shim's memfd.
    static func links(in dir: String, pid: Int32, target linkName: String = linkName) throws(RingError) -> [String] {
        guard let d = opendir(dir) else {
            let err = errno
            if err == ENOENT { throw .noSuchProcess(pid: pid) }
            if err == EACCES || err == EPERM { throw .permissionDenied(pid: pid, path: dir) }
            throw .system(pid: pid, call: "opendir \(dir)", errno: err)
        }
        defer { closedir(d) }
        var found: [String] = []
        var target = [CChar](repeating: 0, count: 256)
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            let path = "\(dir)/\(name)"
            let n = readlink(path, &target, target.count - 1)
            guard n > 0 else { continue }
            let link = String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link == linkName { found.append(path) }
        }
        return found
    }
}
