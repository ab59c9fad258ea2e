import KernelSession
import LeakReport
import SessionStore
import Vocabulary

/// A session file written by anyone: the input is the SQLite file. It is opened as `leakreport` opens
/// it, and every report is built and rendered, text and JSON, plus the reader's other queries. A
/// `SessionError` is the expected answer to a bad file; a trap (a `try!`, an overflow, an index out of
/// range) is a finding.
enum SessionTarget {
    /// Opens and reports on the session file bytes `input` as `leakreport` opens and reports on a file:
    /// `SessionReader(bytes:name:)` runs the file's header checks on the bytes, then the same checks as
    /// a file's open, over an in-memory copy (no file written, opened or locked per input).
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let reader = try? SessionReader(bytes: input, name: "fuzz.leaks") else { return }
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
