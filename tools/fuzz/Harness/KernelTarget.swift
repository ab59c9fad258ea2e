import CLibBPF
@testable import KernelSide

/// The kernel programs' ring buffer records, through the decoder the collector uses on them. The input
/// is a sequence of records, each a little-endian u16 length and that many bytes; each is copied to a
/// buffer of exactly its length, 8-byte aligned as libbpf hands them, so a read past it is an ASan report.
enum KernelTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        var offset = 0
        while offset + 2 <= input.count {
            let length = Int(input[offset]) | Int(input[offset + 1]) << 8
            offset += 2
            let take = min(length, input.count - offset)
            let record = UnsafeMutableRawPointer.allocate(byteCount: max(take, 1), alignment: 8)
            defer { record.deallocate() }
            record.copyMemory(from: input.baseAddress! + offset, byteCount: take)
            offset += take
            feed(KernelRecord.decode(record, size: take))
        }
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
