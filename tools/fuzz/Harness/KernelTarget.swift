import CLibBPF
@testable import KernelSide

/// The kernel programs' ring buffer records (framed as FramedRecords says), through the decoder the
/// collector uses on them.
enum KernelTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        FramedRecords.forEach(in: input) { feed(KernelRecord.decode($0, size: $1)) }
    }

    private static func feed(_ record: KernelRecord?) {
        switch record {
        case .alloc(let a, _, _, let frames)?:
            _ = frames.reduce(0, &+)
            _ = KernelRecord.string(a.comm)
        case .oom(let o)?:
            for pageSize: UInt64 in [4096, 16384, 65536] { _ = KernelRecord.oomFacts(o, pageSize: pageSize) }
            _ = KernelRecord.string(o.victim_comm)
            _ = KernelRecord.string(o.trigger_comm)
        case .shrink(let s)?:
            _ = KernelRecord.string(s.name)
        case .reclaim(_, _, let comm, _, _)?:
            _ = KernelRecord.string(comm)
        case .free?, .reaper?, .kswapd?, nil:
            break
        }
    }
}
