import Glibc
import RingFormat

/// Why a leakshim ring could not be found, mapped or read. Every case describes itself in one line a
/// user can act on; none of them is a crash, whatever the traced (untrusted) process wrote.
public enum RingError: Error, Equatable, Sendable, CustomStringConvertible {
    case noSuchProcess(pid: Int32)
    case permissionDenied(pid: Int32, path: String)
    /// The process has no ring: it was not started with the shim, or the shim is disabled.
    case noRing(pid: Int32)
    /// Waiting for a launched process's ring, the process ended first.
    case exitedBeforeRing(pid: Int32)
    case ringTimeout(pid: Int32, milliseconds: Int)
    case notRegularFile(pid: Int32)
    case notSealed(pid: Int32)
    case badMagic(pid: Int32, found: UInt64)
    case unsupportedVersion(pid: Int32, found: UInt32)
    case badHeaderSize(pid: Int32, found: UInt32)
    case badDataSize(pid: Int32, found: UInt64)
    case badMaxDepth(pid: Int32, found: UInt32)
    case sizeMismatch(pid: Int32, fileSize: UInt64, expected: UInt64)
    /// Another collector is attached and alive (its heartbeat is fresh).
    case anotherCollector(pid: Int32, readerPID: Int32)
    case corrupt(pid: Int32, position: UInt64, problem: RingCorruption)
    case system(pid: Int32, call: String, errno: Int32)
    /// The shim's live table (what was live before the attach) is not what leakring.h describes.
    case liveTableCorrupt(pid: Int32, problem: String)

    public var description: String {
        switch self {
        case .noSuchProcess(let pid):
            return "no such process \(pid)"
        case .permissionDenied(let pid, let path):
            return "permission denied reading \(path): run as the user of pid \(pid) or as root"
        case .noRing(let pid):
            return "pid \(pid) has no leakshim ring: start it with LD_PRELOAD=/path/to/libleakshim.so (and without LEAKSHIM_DISABLE)"
        case .exitedBeforeRing(let pid):
            return "pid \(pid) exited before its leakshim ring appeared: check that LD_PRELOAD reached it"
        case .ringTimeout(let pid, let ms):
            return "pid \(pid) did not create a leakshim ring within \(ms) ms: is LD_PRELOAD set to libleakshim.so?"
        case .notRegularFile(let pid):
            return "the leakshim ring of pid \(pid) is not a regular memfd: refusing it"
        case .notSealed(let pid):
            return "the leakshim ring of pid \(pid) is not sealed against resizing: refusing it (a shrink would crash the collector)"
        case .badMagic(let pid, let found):
            return "the leakshim ring of pid \(pid) has bad magic 0x\(String(found, radix: 16)): not a leakshim ring"
        case .unsupportedVersion(let pid, let found):
            return "the leakshim ring of pid \(pid) is version \(found), this collector reads version \(LR_VERSION): use matching shim and collector"
        case .badHeaderSize(let pid, let found):
            return "the leakshim ring of pid \(pid) has header size \(found), expected \(LR_HEADER_SIZE): use matching shim and collector"
        case .badDataSize(let pid, let found):
            return "the leakshim ring of pid \(pid) has data size \(found): not a power of two between \(LR_MIN_DATA_SIZE) and \(LR_MAX_DATA_SIZE)"
        case .badMaxDepth(let pid, let found):
            return "the leakshim ring of pid \(pid) has max depth \(found), more than \(LR_MAX_DEPTH)"
        case .sizeMismatch(let pid, let fileSize, let expected):
            return "the leakshim ring of pid \(pid) is \(fileSize) bytes, its header says \(expected): refusing it"
        case .anotherCollector(let pid, let reader):
            return "pid \(pid) is already traced by collector pid \(reader): stop that one first"
        case .corrupt(let pid, let position, let problem):
            return "ring of pid \(pid) is corrupt at position \(position): \(problem)"
        case .liveTableCorrupt(let pid, let problem):
            return "the leakshim live table of pid \(pid) is corrupt: \(problem)"
        case .system(let pid, let call, let err):
            return "\(call) failed for the leakshim ring of pid \(pid): \(String(cString: strerror(err)))"
        }
    }
}

/// What exactly was wrong with a record or position in a ring (see `RingError.corrupt`).
public enum RingCorruption: Equatable, Sendable, CustomStringConvertible {
    case cursorBeyondData(distance: UInt64, dataSize: UInt64)
    case cursorUnaligned(position: UInt64)
    case sizeNotMultipleOf8(size: UInt32)
    case sizeTooSmall(size: UInt32, type: UInt8, minimum: UInt32)
    case sizeTooLarge(size: UInt32)
    case sizeBeyondWritten(size: UInt32, written: UInt64)
    case unknownType(UInt8)
    case unknownFunction(type: UInt8, fn: UInt8)
    case zeroStackID
    case depthTooLarge(depth: UInt32, maxDepth: UInt32)
    case stackSizeMismatch(size: UInt32, depth: UInt32)
    case pathTooLong(length: UInt16)
    case moduleSizeMismatch(size: UInt32, pathLength: UInt16)
    case buildIDTooLong(length: UInt8)

    public var description: String {
        switch self {
        case .cursorBeyondData(let distance, let dataSize):
            return "the write cursor is \(distance) bytes ahead of the reader, more than the ring's \(dataSize)"
        case .cursorUnaligned(let position):
            return "the write cursor \(position) is not a multiple of 8"
        case .sizeNotMultipleOf8(let size):
            return "record size \(size) is not a multiple of 8"
        case .sizeTooSmall(let size, let type, let minimum):
            return "record size \(size) is smaller than \(minimum), the fixed part of type \(type)"
        case .sizeTooLarge(let size):
            return "record size \(size) is larger than \(LR_MAX_RECORD)"
        case .sizeBeyondWritten(let size, let written):
            return "record size \(size) runs past the \(written) bytes written"
        case .unknownType(let type):
            return "unknown record type \(type)"
        case .unknownFunction(let type, let fn):
            return "record type \(type) has function \(fn), which cannot produce it"
        case .zeroStackID:
            return "a stack record has id 0"
        case .depthTooLarge(let depth, let maxDepth):
            return "stack depth \(depth) is larger than the ring's max depth \(maxDepth)"
        case .stackSizeMismatch(let size, let depth):
            return "stack record size \(size) does not match its depth \(depth)"
        case .pathTooLong(let length):
            return "module path length \(length) is larger than \(LR_MAX_PATH)"
        case .moduleSizeMismatch(let size, let pathLength):
            return "module record size \(size) does not match its path length \(pathLength)"
        case .buildIDTooLong(let length):
            return "build-id length \(length) is larger than \(LR_MAX_BUILD_ID)"
        }
    }
}
