/// Why a format could not be produced; each case reads as a one-line message at the CLI edge.
public enum FormatError: Error, Equatable, CustomStringConvertible {
    /// zlib refused to compress (the status and its message).
    case compression(status: Int32, message: String)
    /// The protobuf library could not serialize the profile.
    case serialization(String)

    public var description: String {
        switch self {
        case .compression(let status, let message): return "gzip compression failed (zlib status \(status)): \(message)"
        case .serialization(let message): return "could not serialize the pprof profile: \(message)"
        }
    }
}
