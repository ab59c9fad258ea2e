import Glibc
import Vocabulary

/// A JIT's symbol map, `/tmp/perf-PID.map`, as the JVM (`-XX:+DumpPerfMapAtExit`, perf-map-agent), node
/// (`--perf-basic-prof`) and others write it for perf: one `START SIZE NAME` line per compiled piece of
/// code, START and SIZE in hex. The file is the traced program's: it is read through
/// `ModuleFile.open(regularFileAt:)`, at most `maxBytes` of it, and lines that do not parse are skipped.
struct PerfMap {
    static let maxBytes = 64 << 20

    private var ranges = AddressRanges()
    private var names: [String] = []
    /// How much of the file was read, so a file the JIT has grown since is read again.
    private(set) var bytesRead = 0

    init() {}

    init(text: Substring, bytesRead: Int) {
        var entries: [(start: UInt64, end: UInt64, line: Int, name: Substring)] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            guard fields.count == 3, let start = Self.hex(fields[0]), let size = Self.hex(fields[1]), size > 0 else { continue }
            let (end, overflow) = start.addingReportingOverflow(size)
            guard !overflow else { continue }
            entries.append((start, end, i, fields[2]))
        }
        // Code can be moved and its memory reused: of two entries at one start the later line wins.
        entries.sort { ($0.start, $1.line) < ($1.start, $0.line) }
        var last: UInt64? = nil
        for e in entries where e.start != last {
            ranges.append(start: e.start, end: e.end)
            names.append(String(e.name))
            last = e.start
        }
        self.bytesRead = bytesRead
    }

    private static func hex(_ s: Substring) -> UInt64? {
        UInt64(s.hasPrefix("0x") ? s.dropFirst(2) : s, radix: 16)
    }

    var isEmpty: Bool { ranges.isEmpty }

    /// The name of the code at `address`, and how far into it the address is.
    func lookup(_ address: UInt64) -> (name: String, offset: UInt64)? {
        ranges.index(of: address).map { (names[$0], address - ranges.starts[$0]) }
    }

    /// The map of a process: inside its own root first (a container writes `/tmp/perf-NSPID.map` with
    /// the pid its namespace knows), then the host's /tmp. nil when neither exists.
    static func read(pid: Int32) -> PerfMap? {
        var paths: [String] = []
        if let ns = namespacePid(pid) { paths.append("/proc/\(pid)/root/tmp/perf-\(ns).map") }
        paths.append("/tmp/perf-\(pid).map")
        for p in paths {
            guard let f = ModuleFile.open(regularFileAt: p) else { continue }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while bytes.count < maxBytes {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(f.fd, $0.baseAddress, min($0.count, maxBytes - bytes.count)) }
                if n <= 0 { break }
                bytes.append(contentsOf: chunk[..<n])
            }
            // A JIT may be writing its last line right now: only whole lines count.
            let whole = bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let text = String(decoding: bytes[..<whole], as: UTF8.self)
            return PerfMap(text: text[...], bytesRead: whole)
        }
        return nil
    }

    /// The innermost pid of `NSpid:` in /proc/PID/status (the pid inside its own pid namespace).
    static func namespacePid(_ pid: Int32) -> Int32? {
        ProcFile.read("/proc/\(pid)/status").flatMap(namespacePid(status:))
    }

    /// The innermost pid of the `NSpid:` line of /proc/PID/status text.
    static func namespacePid(status: String) -> Int32? {
        for line in status.split(separator: "\n") where line.hasPrefix("NSpid:") {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.flatMap { Int32($0) }
        }
        return nil
    }
}

/// User frames outside every module: code a JIT compiled into anonymous executable memory. Named
/// through the process's perf map when it has one; otherwise marked as JIT code when the process's
/// mappings (while it lives) show anonymous executable memory there, or when it has a perf map at all.
final class JITFrames {
    private var maps: [Int32: PerfMap] = [:]
    private var mappings: [Int32: [ProcMapping]?] = [:]
    /// Maps read again in this batch: a miss re-reads a map at most once a batch.
    private var reread: Set<Int32> = []

    /// The perf-map name at `address`, re-reading a map that may have grown since it was read.
    func name(pid: Int32, address: UInt64) -> (name: String, offset: UInt64)? {
        if let hit = maps[pid]?.lookup(address) { return hit }
        guard reread.insert(pid).inserted else { return nil }
        if let fresh = PerfMap.read(pid: pid), fresh.bytesRead != maps[pid]?.bytesRead { maps[pid] = fresh }
        return maps[pid]?.lookup(address)
    }

    /// Whether `address` is JIT code, as far as can be known (see the type's comment).
    func isJIT(pid: Int32, address: UInt64) -> Bool {
        if let m = maps[pid], !m.isEmpty { return true }
        if mappings[pid] == nil { mappings[pid] = .some(ProcMaps.read(pid: pid)) }
        guard let list = mappings[pid] ?? nil, let m = list.first(where: { $0.start <= address && address < $0.end }) else { return false }
        // Anonymous, or named by the program (PR_SET_VMA_ANON_NAME); not [vdso], [stack] and the like.
        return m.executable && !m.isFile && (m.path.isEmpty || m.path.hasPrefix("[anon:"))
    }

    /// Mappings change and maps grow between batches.
    func startBatch() {
        mappings.removeAll(keepingCapacity: true)
        reread.removeAll(keepingCapacity: true)
    }
}
