import CMalloc
import Glibc

/// glibc's mallopt(3), for the few places that choose how this process's own malloc
/// returns memory to the system.
public enum MallocTuning {
    /// The options this project sets.
    public enum Option {
        case trimThreshold, mmapThreshold

        var value: Int32 {
            switch self {
            case .trimThreshold: M_TRIM_THRESHOLD
            case .mmapThreshold: M_MMAP_THRESHOLD
            }
        }
    }

    /// The largest mmap threshold glibc accepts (half its 64 MiB heap size on 64-bit); more is ignored.
    public static let maxMmapThreshold: Int32 = 32 << 20

    /// Sets `option`; false if glibc refused it.
    @discardableResult
    public static func set(_ option: Option, _ value: Int32) -> Bool {
        mallopt(option.value, value) == 1
    }
}
