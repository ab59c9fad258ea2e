import Glibc
import KernelSession
import LeakReport
import SessionStore
import Vocabulary

/// A session file written by anyone: the input is the SQLite file. It is opened as `leakreport` opens
/// it, and every report is built and rendered, text and JSON, plus the reader's other queries. A
/// `SessionError` is the expected answer to a bad file; a trap (a `try!`, an overflow, an index out of
/// range) is a finding.
enum SessionTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        read(Scratch.write(input, name: "fuzz.leaks"))
    }

    /// Opens and reports on the session at `path`, as `leakreport` does.
    static func read(_ path: String) {
        // A -wal or -shm left by an earlier input would be read with this one.
        unlink(path + "-wal")
        unlink(path + "-shm")
        defer {
            unlink(path + "-wal")
            unlink(path + "-shm")
        }
        guard let reader = try? SessionReader(path: path) else { return }
        _ = Formatting.sessionLine(reader.info)
        _ = try? reader.counters()
        _ = try? reader.spaces()
        _ = try? reader.modules()
        _ = try? reader.peaks()
        _ = try? reader.history()
        for options in [
            TopOptions(top: 10, sort: .bytes, filter: LiveFilter(), addresses: false, suppressions: Suppressions()),
            TopOptions(
                top: 3, sort: .count, filter: LiveFilter(kinds: [.heap, .mmap], minSize: 1, maxSize: 1 << 40, minAgeNs: 1),
                addresses: true, suppressions: Suppressions(builtins: false, patterns: ["leak:main"])),
        ] {
            if let top = try? TopReport.build(reader, options: options) {
                _ = TopTextRenderer.render(top)
                _ = TopJSON(top).encoded()
            }
        }
        if let oom = try? OOMReport.build(reader) {
            _ = OOMTextRenderer.render(oom)
            _ = OOMJSON(oom).encoded()
        }
        if let reclaim = try? ReclaimReport.build(reader) {
            _ = ReclaimTextRenderer.render(reclaim, intervals: true)
            _ = ReclaimJSON(reclaim).encoded()
        }
    }
}
