import CLibBPF
import Vocabulary

/// One ring-buffer record of the uprobe programs (bpf/uprobe_events.h), checked against its length.
/// Pure: the kernel writes these records, but the decoder still reads nothing past `size`.
enum UprobeRecord: Equatable {
    case alloc(address: UInt64, size: UInt64, function: AllocFunction, kind: BlockKind, backing: Backing?, replaces: UInt64?,
               stackID: Int32, inlineFrames: [UInt64], time: UInt64, tid: UInt32)
    case free(address: UInt64, pending: Bool)
    case unmap(address: UInt64, length: UInt64, pending: Bool)
    case undo(address: UInt64, kind: BlockKind)
    case loader

    /// nil for a record too short for its type, or of a type or function this collector does not know.
    static func decode(_ data: UnsafeRawPointer, size: Int) -> UprobeRecord? {
        guard size >= MemoryLayout<ue_header>.size else { return nil }
        let h = data.loadUnaligned(as: ue_header.self)
        let pending = h.flags & UInt16(UE_F_PENDING) != 0
        switch UInt32(h.type) {
        case UE_ALLOC.rawValue:
            guard size >= MemoryLayout<ue_alloc>.size else { return nil }
            let a = data.loadUnaligned(as: ue_alloc.self)
            guard let function = allocFunction(h.function) else { return nil }
            var frames: [UInt64] = []
            if a.stack_id < 0 && a.nr_frames > 0 {
                let n = min(Int(a.nr_frames), Int(UE_MAX_FRAMES))
                guard size >= MemoryLayout<ue_alloc>.size + 8 * n else { return nil }
                frames = (0..<n).map { data.loadUnaligned(fromByteOffset: MemoryLayout<ue_alloc>.size + 8 * $0, as: UInt64.self) }
            }
            let isMap = function == .mmap || function == .mremap
            let backing: Backing? = function == .mmap ? (h.flags & UInt16(UE_F_FILE) != 0 ? .file : .anonymous) : nil
            return .alloc(
                address: a.address, size: a.size, function: function, kind: isMap ? .mmap : .heap, backing: backing,
                replaces: a.old_address == 0 ? nil : a.old_address, stackID: a.stack_id, inlineFrames: frames, time: h.time_ns, tid: h.tid)
        case UE_FREE.rawValue, UE_MUNMAP.rawValue, UE_UNDO.rawValue, UE_LOADER.rawValue:
            guard size >= MemoryLayout<ue_release>.size else { return nil }
            let r = data.loadUnaligned(as: ue_release.self)
            switch UInt32(h.type) {
            case UE_FREE.rawValue: return .free(address: r.address, pending: pending)
            case UE_MUNMAP.rawValue: return .unmap(address: r.address, length: r.length, pending: pending)
            case UE_UNDO.rawValue:
                switch UInt32(h.function) {
                case UE_FN_REALLOC.rawValue, UE_FN_REALLOCARRAY.rawValue: return .undo(address: r.address, kind: .heap)
                case UE_FN_MREMAP.rawValue: return .undo(address: r.address, kind: .mmap)
                default: return nil
                }
            default: return .loader
            }
        default:
            return nil
        }
    }

    /// The tracker's event for this record, or nil for a loader record (the caller rescans the
    /// modules). `stack` turns an allocation's stack-map id or inline frames into its stack.
    func event(stack: (_ stackID: Int32, _ inlineFrames: [UInt64]) -> StackRef) -> Event? {
        switch self {
        case .alloc(let address, let size, let function, let kind, let backing, let replaces, let stackID, let inline, let time, let tid):
            return .alloc(Allocation(
                address: address, size: size, kind: kind, function: function, stack: stack(stackID, inline), time: time, tid: tid,
                replaces: replaces, backing: backing))
        case .free(let address, let pending): return .free(address: address, kind: .heap, pending: pending)
        case .unmap(let address, let length, let pending): return .unmap(address: address, length: length, pending: pending)
        case .undo(let address, let kind): return .undo(address: address, kind: kind)
        case .loader: return nil
        }
    }

    private static func allocFunction(_ code: UInt8) -> AllocFunction? {
        switch UInt32(code) {
        case UE_FN_MALLOC.rawValue: return .malloc
        case UE_FN_CALLOC.rawValue: return .calloc
        case UE_FN_REALLOC.rawValue: return .realloc
        case UE_FN_REALLOCARRAY.rawValue: return .reallocarray
        case UE_FN_POSIX_MEMALIGN.rawValue: return .posixMemalign
        case UE_FN_ALIGNED_ALLOC.rawValue: return .alignedAlloc
        case UE_FN_MEMALIGN.rawValue: return .memalign
        case UE_FN_VALLOC.rawValue: return .valloc
        case UE_FN_PVALLOC.rawValue: return .pvalloc
        case UE_FN_MMAP.rawValue: return .mmap
        case UE_FN_MREMAP.rawValue: return .mremap
        default: return nil
        }
    }
}
