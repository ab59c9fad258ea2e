/// Why a session file could not be read or written. `description` is one line for the user.
public enum SessionError: Error, CustomStringConvertible, Equatable {
    case notFound(path: String)
    case notASession(path: String, reason: String)
    case unsupportedVersion(path: String, found: Int, expected: Int)
    case corrupt(path: String, detail: String)
    case cannotCreate(path: String, detail: String)
    case writeFailed(path: String, detail: String)

    /// What went wrong, without the path (for lines that name the path themselves).
    public var detail: String {
        switch self {
        case .notFound: return "no such file"
        case .notASession(_, let r): return r
        case .unsupportedVersion(_, let f, let e): return "schema version \(f), expected \(e)"
        case .corrupt(_, let d), .cannotCreate(_, let d), .writeFailed(_, let d): return d
        }
    }

    public var description: String {
        switch self {
        case .notFound(let p): return "no such session file: \(p)"
        case .notASession(let p, let r): return "\(p) is not a leak session (\(r))"
        case .unsupportedVersion(let p, let f, let e):
            return "\(p) has session schema version \(f); this leakreport reads version \(e)"
        case .corrupt(let p, let d): return "session file \(p) is corrupt: \(d)"
        case .cannotCreate(let p, let d): return "cannot create session file \(p): \(d)"
        case .writeFailed(let p, let d): return "writing session file \(p) failed: \(d)"
        }
    }
}
