import BPFSupport
import CLibBPF
import Foundation

/// The kernel side's BPF objects (built from bpf/*.bpf.c by the BPFCompile plugin), loaded and sharing
/// one ring buffer and one counter array, and the links that attach their programs to tracepoints.
final class KernelPrograms {
    /// Maps every object declares but only the first loaded object creates; the others reuse its maps.
    private static let sharedMaps = ["events", "counters"]
    /// Load order. The allocation programs come first, so the shared maps exist even when a later
    /// object fails to load.
    static let objectNames = ["allocations", "oom", "reclaim"]

    private var objects: [String: BPFObject] = [:]
    private var links: [OpaquePointer] = []
    private var sharedFDs: [String: Int32] = [:]
    /// Programs attached at least once, by name, for their recursion-miss counts.
    private(set) var attachedPrograms: Set<String> = []
    /// Objects that failed to load, with the reason.
    private(set) var failedObjects: [String: String] = [:]

    /// Opens and loads every object. An object that fails to load is left out (its tracepoints then
    /// fail to attach with that reason); only when none loads is it an error.
    init(config: ke_config, ringBufferBytes: UInt32, stackMapEntries: UInt32) throws(KernelError) {
        for name in Self.objectNames {
            do throws(KernelError) {
                let obj: BPFObject
                do {
                    obj = try BPFObject(named: name)
                    try configure(obj, name: name, ringBufferBytes: ringBufferBytes, stackMapEntries: stackMapEntries)
                    try obj.setReadOnly(config)
                    try obj.load()
                } catch {
                    throw .bpfObject(name: error.name, detail: error.detail)
                }
                objects[name] = obj
                if sharedFDs.isEmpty {
                    for m in Self.sharedMaps { sharedFDs[m] = obj.mapFD(m) }
                }
            } catch {
                failedObjects[name] = error.description
            }
        }
        if objects.isEmpty {
            throw failedObjects["allocations"].map { .bpfObject(name: "the kernel side", detail: $0) } ?? .noTracepointAttached
        }
    }

    deinit {
        // Links first: closing an object unloads its programs.
        for l in links { bpf_link__destroy(l) }
        objects.removeAll()
    }

    private func configure(_ obj: BPFObject, name: String, ringBufferBytes: UInt32, stackMapEntries: UInt32) throws(BPFLoadError) {
        for m in Self.sharedMaps {
            guard let map = obj.map(m) else { continue }
            if let fd = sharedFDs[m] {
                if bpf_map__reuse_fd(map, fd) != 0 { throw BPFLoadError(name: name, detail: "cannot share map \(m): \(String(cString: strerror(errno)))") }
            } else if m == "events" {
                bpf_map__set_max_entries(map, ringBufferBytes)
            }
        }
        if let stacks = obj.map("stacks") { bpf_map__set_max_entries(stacks, stackMapEntries) }
    }

    /// What became of one attach attempt.
    enum AttachOutcome {
        case attached
        /// ENOENT: the kernel has no tracepoint of that name.
        case missing
        case failed(String)
    }

    /// Attaches `program` of `object` to the raw tracepoint `tracepoint`.
    func attach(object: String, program: String, tracepoint: String) -> AttachOutcome {
        guard let obj = objects[object] else { return .failed(failedObjects[object] ?? "\(object) not loaded") }
        guard let prog = obj.program(program) else { return .failed("no program \(program)") }
        _ = LibBPFLog.take()
        guard let link = bpf_program__attach_raw_tracepoint(prog, tracepoint) else {
            let err = errno
            _ = LibBPFLog.take()
            return err == ENOENT ? .missing : .failed(String(cString: strerror(err)))
        }
        links.append(link)
        attachedPrograms.insert(program)
        return .attached
    }

    /// The shared ring buffer's map.
    var eventsFD: Int32 { sharedFDs["events"] ?? -1 }

    /// The allocation stacks' map, or -1 when the allocation programs did not load.
    var stacksFD: Int32 {
        objects["allocations"]?.mapFD("stacks") ?? -1
    }

    /// The shared per-CPU counters, summed over the CPUs.
    func counters() -> [UInt64] {
        BPFObject.sumPerCPU(fd: sharedFDs["counters"] ?? -1, count: Int(KC_COUNT.rawValue))
    }

    /// How often the kernel skipped `program` because it was already running on that CPU.
    func recursionMisses(_ program: String) -> UInt64 {
        var total: UInt64 = 0
        for (_, obj) in objects {
            guard let prog = obj.program(program) else { continue }
            var info = bpf_prog_info()
            var len = UInt32(MemoryLayout<bpf_prog_info>.size)
            if bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0 { total &+= info.recursion_misses }
        }
        return total
    }
}
