import Glibc
import Vocabulary

/// Facts about the machine that every session records.
public enum HostFacts {
    /// The node name, as uname(2) gives it.
    public static var name: String { uname(\.nodename) }
    /// The kernel release, as uname(2) gives it.
    public static var kernelRelease: String { uname(\.release) }

    private static func uname<T>(_ field: KeyPath<utsname, T>) -> String {
        var u = utsname()
        Glibc.uname(&u)
        var value = u[keyPath: field]
        return withUnsafeBytes(of: &value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// VmRSS of a process in bytes, or nil when it is gone or unreadable.
    public static func rssBytes(pid: Int32) -> UInt64? { statusBytes("/proc/\(pid)/status", field: "VmRSS:") }

    /// This process's peak RSS (VmHWM) in bytes, 0 if unreadable.
    public static func peakRSSBytes() -> UInt64 { statusBytes("/proc/self/status", field: "VmHWM:") ?? 0 }

    private static func statusBytes(_ path: String, field: String) -> UInt64? {
        ProcFile.read(path).flatMap { statusBytes(status: $0, field: field) }
    }

    /// A kB field of /proc/PID/status text in bytes; nil when it is missing or does not fit 64 bits.
    static func statusBytes(status text: String, field: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            let digits = line.dropFirst(field.count).filter { $0.isASCII && $0.isNumber }
            guard let kB = UInt64(digits) else { return nil }
            let (bytes, overflow) = kB.multipliedReportingOverflow(by: 1024)
            return overflow ? nil : bytes
        }
        return nil
    }
}
