import Foundation
import SessionStore

/// Why a collection could not start or finish. `description` is the one line leakcollect prints.
public enum CollectError: Error, CustomStringConvertible {
    case programNotFound(String)
    case notExecutable(String, reason: String)
    case spawnFailed(String, errno: Int32)
    case shimNotFound(searched: [String])
    case shimNotLoaded(program: String, detail: String)
    case noSuchProcess(Int32)
    case ring(String)
    case session(SessionError)
    case other(String)

    public var description: String {
        switch self {
        case .programNotFound(let p): return "no such program: \(p)"
        case .notExecutable(let p, let reason): return "\(p) \(reason)"
        case .spawnFailed(let p, let e): return "cannot start \(p): \(String(cString: strerror(e)))"
        case .shimNotFound(let searched):
            return "libleakshim.so not found (looked in \(searched.joined(separator: ", "))): run `swift build` or pass --shim PATH"
        case .shimNotLoaded(let p, let d): return "\(p) did not load libleakshim.so: \(d)"
        case .noSuchProcess(let pid): return "no such process: \(pid)"
        case .ring(let d): return d
        case .session(let e): return e.description
        case .other(let d): return d
        }
    }
}
