import CLibBPF
import Foundation

/// libbpf prints its diagnostics (verifier logs, attach failures) to stderr by default. The collector
/// reports failures itself, in one line, so it keeps libbpf's recent lines instead and quotes the
/// relevant one when something fails.
public enum LibBPFLog {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var lines: [String] = []

    public static func install() {
        libbpf_set_print { level, format, args in
            guard let format, let args else { return 0 }
            var buffer = [CChar](repeating: 0, count: 1024)
            let n = vsnprintf(&buffer, buffer.count, format, args)
            guard n > 0 else { return 0 }
            let text = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            LibBPFLog.append(text, debug: level == LIBBPF_DEBUG)
            return 0
        }
    }

    private static func append(_ text: String, debug: Bool) {
        guard !debug else { return }
        lock.lock()
        defer { lock.unlock() }
        for line in text.split(separator: "\n") where !line.isEmpty {
            lines.append(String(line))
        }
        if lines.count > 200 { lines.removeFirst(lines.count - 200) }
    }

    /// The lines libbpf printed since the last call, and forgets them.
    public static func take() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        let out = lines
        lines.removeAll()
        return out
    }

    /// The most telling line of a failure: the verifier's last complaint, else libbpf's last line.
    public static func summary(_ lines: [String]) -> String? {
        let verifier = lines.last { !$0.hasPrefix("libbpf:") && !$0.hasPrefix("--") && !$0.hasPrefix("processed ") }
        return verifier ?? lines.last
    }
}
