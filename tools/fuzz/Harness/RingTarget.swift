import Glibc
import RingFormat
import ShimSource
import Tracking
import Vocabulary

/// The shim's ring as a hostile process could leave it. The input is a ring file image: the header
/// page, then the data region, cut short where it is all zeros (the target pads it back). The data
/// region is the header's data_size when that is a power of two of at most 256 KiB, so a seed that
/// wraps stays valid; any other declared size is fed as is and must be refused. Bit 0 of the header's
/// reserved0 (which the reader ignores) makes the target attach instead of launch. The decoded
/// events go through a tracker and a cut, as in the collector.
enum RingTarget {
    static let headerSize = Int(LR_HEADER_SIZE)

    static func run(_ input: UnsafeRawBufferPointer) {
        var header = lr_header()
        withUnsafeMutableBytes(of: &header) { h in
            h.copyMemory(from: UnsafeRawBufferPointer(rebasing: input.prefix(h.count)))
        }
        let declared = header.data_size
        let dataSize: Int
        if declared >= UInt64(LR_MIN_DATA_SIZE), declared <= 256 << 10, declared & (declared &- 1) == 0 {
            dataSize = Int(declared)
        } else {
            dataSize = Int(LR_MIN_DATA_SIZE)
        }
        let fd = lr_memfd_create("leakfuzz-ring", LR_MFD_CLOEXEC | LR_MFD_ALLOW_SEALING)
        guard fd >= 0, ftruncate(fd, off_t(headerSize + dataSize)) == 0 else { fatalError("leakfuzz: memfd: \(errno)") }
        _ = pwrite(fd, input.baseAddress, min(input.count, headerSize), 0)
        if input.count > headerSize {
            _ = pwrite(fd, input.baseAddress! + headerSize, min(input.count - headerSize, dataSize), off_t(headerSize))
        }
        guard lr_add_seals(fd, Int32(LR_SEALS_APPLIED)) == 0 else { fatalError("leakfuzz: seals: \(errno)") }

        let mapping: RingMapping
        do { mapping = try RingMapping(fd: fd, pid: getpid()) } catch { return }
        let reader = RingReader(mapping: mapping)
        do {
            try reader.attach(mode: header.reserved0 & 1 == 0 ? .launch : .attach, settle: .zero)
        } catch {
            return
        }
        let tracker = Tracker(maxDepth: Int(mapping.maxDepth), now: mapping.startMonotonicNs)
        let space = tracker.openSpace(SpaceInfo(kind: .user, pid: 1, command: ["fuzz"], startNs: mapping.startMonotonicNs))
        do {
            _ = try reader.drainToEnd { tracker.apply($0, in: space) }
        } catch {
            // A corrupt record ends the drain, as it ends the collection; what came before is kept.
        }
        _ = reader.counters
        tracker.closeSpace(space, at: mapping.startMonotonicNs &+ 1, end: .exited)
        _ = tracker.cut(at: mapping.startMonotonicNs &+ 2)
        reader.detach()
    }
}
