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
    public static func rssBytes(pid: Int32) -> UInt64? {
        guard let text = ProcFile.read("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.dropFirst(6).filter(\.isNumber)
            return UInt64(digits).map { $0 * 1024 }
        }
        return nil
    }
}
