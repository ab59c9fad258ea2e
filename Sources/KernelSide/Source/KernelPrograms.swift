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

    private var objects: [String: OpaquePointer] = [:]
    /// The ELF images libbpf reads from; they must outlive the objects.
    private var images: [Data] = []
    private var links: [OpaquePointer] = []
    private var sharedFDs: [String: Int32] = [:]
    /// Programs attached at least once, by name, for their recursion-miss counts.
    private(set) var attachedPrograms: Set<String> = []
    /// Objects that failed to load, with the reason.
    private(set) var failedObjects: [String: String] = [:]

    /// Opens and loads every object. An object that fails to load is left out (its tracepoints then
    /// fail to attach with that reason); only when none loads is it an error.
    init(config: ke_config, ringBufferBytes: UInt32, stackMapEntries: UInt32) throws(KernelError) {
        LibBPFLog.install()
        for name in Self.objectNames {
            do throws(KernelError) {
                let obj = try open(name)
                try configure(obj, name: name, config: config, ringBufferBytes: ringBufferBytes, stackMapEntries: stackMapEntries)
                if bpf_object__load(obj) != 0 {
                    let err = errno
                    let why = LibBPFLog.summary(LibBPFLog.take()) ?? String(cString: strerror(err))
                    bpf_object__close(obj)
                    throw .bpfObject(name: name, detail: why)
                }
                objects[name] = obj
                if sharedFDs.isEmpty {
                    for m in Self.sharedMaps { sharedFDs[m] = bpf_map__fd(bpf_object__find_map_by_name(obj, m)) }
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
        for l in links { bpf_link__destroy(l) }
        for (_, o) in objects { bpf_object__close(o) }
    }

    private func open(_ name: String) throws(KernelError) -> OpaquePointer {
        guard let text = BPFObjects.base64[name], let data = Data(base64Encoded: text) else {
            throw .bpfObject(name: name, detail: "not embedded in this build")
        }
        images.append(data)
        let obj = data.withUnsafeBytes { raw -> OpaquePointer? in
            // libbpf keeps reading the image until load; `images` keeps the bytes alive and unmoved.
            bpf_object__open_mem(raw.baseAddress, raw.count, nil)
        }
        guard let obj else { throw .bpfObject(name: name, detail: String(cString: strerror(errno))) }
        return obj
    }

    private func configure(
        _ obj: OpaquePointer, name: String, config: ke_config, ringBufferBytes: UInt32, stackMapEntries: UInt32
    ) throws(KernelError) {
        for m in Self.sharedMaps {
            guard let map = bpf_object__find_map_by_name(obj, m) else { continue }
            if let fd = sharedFDs[m] {
                if bpf_map__reuse_fd(map, fd) != 0 { throw .bpfObject(name: name, detail: "cannot share map \(m): \(String(cString: strerror(errno)))") }
            } else if m == "events" {
                bpf_map__set_max_entries(map, ringBufferBytes)
            }
        }
        if let stacks = bpf_object__find_map_by_name(obj, "stacks") { bpf_map__set_max_entries(stacks, stackMapEntries) }
        try writeConfig(obj, name: name, config: config)
    }

    /// Writes the settings into the object's `cfg` variable in .rodata, found through the object's BTF
    /// (the variable's offset in the section), before the load freezes it.
    private func writeConfig(_ obj: OpaquePointer, name: String, config: ke_config) throws(KernelError) {
        var rodata: OpaquePointer?
        var map = bpf_object__next_map(obj, nil)
        while let m = map {
            if String(cString: bpf_map__name(m)).hasSuffix(".rodata") { rodata = m }
            map = bpf_object__next_map(obj, m)
        }
        guard let rodata, let btf = bpf_object__btf(obj) else { throw .bpfObject(name: name, detail: "no .rodata or BTF") }
        // The section's DATASEC type is the only BTF type named ".rodata".
        let sec = btf__find_by_name(btf, ".rodata")
        guard sec > 0, let t = btf__type_by_id(btf, UInt32(sec)) else { throw .bpfObject(name: name, detail: "no .rodata section in BTF") }
        var offset: Int?
        let vars = btf_var_secinfos(t)
        for i in 0..<Int(btf_vlen(t)) {
            guard let v = vars?[i], let vt = btf__type_by_id(btf, v.type), let vname = btf__name_by_offset(btf, vt.pointee.name_off) else { continue }
            if String(cString: vname) == "cfg" {
                guard Int(v.size) == MemoryLayout<ke_config>.size else {
                    throw .bpfObject(name: name, detail: "cfg is \(v.size) bytes, expected \(MemoryLayout<ke_config>.size)")
                }
                offset = Int(v.offset)
            }
        }
        var size = 0
        guard let offset, let current = bpf_map__initial_value(rodata, &size), offset + MemoryLayout<ke_config>.size <= size else {
            throw .bpfObject(name: name, detail: "no cfg variable in .rodata")
        }
        var image = [UInt8](UnsafeRawBufferPointer(start: current, count: size))
        image.withUnsafeMutableBytes { $0.storeBytes(of: config, toByteOffset: offset, as: ke_config.self) }
        if bpf_map__set_initial_value(rodata, image, size) != 0 {
            throw .bpfObject(name: name, detail: "cannot set .rodata: \(String(cString: strerror(errno)))")
        }
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
        guard let prog = bpf_object__find_program_by_name(obj, program) else { return .failed("no program \(program)") }
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
        guard let obj = objects["allocations"], let m = bpf_object__find_map_by_name(obj, "stacks") else { return -1 }
        return bpf_map__fd(m)
    }

    /// The shared per-CPU counters, summed over the CPUs.
    func counters() -> [UInt64] {
        var out = [UInt64](repeating: 0, count: Int(KC_COUNT.rawValue))
        guard let fd = sharedFDs["counters"] else { return out }
        let cpus = max(Int(libbpf_num_possible_cpus()), 1)
        var values = [UInt64](repeating: 0, count: cpus)
        for i in 0..<out.count {
            var key = UInt32(i)
            if bpf_map_lookup_elem(fd, &key, &values) == 0 { out[i] = values.reduce(0, &+) }
        }
        return out
    }

    /// How often the kernel skipped `program` because it was already running on that CPU.
    func recursionMisses(_ program: String) -> UInt64 {
        var total: UInt64 = 0
        for (_, obj) in objects {
            guard let prog = bpf_object__find_program_by_name(obj, program) else { continue }
            var info = bpf_prog_info()
            var len = UInt32(MemoryLayout<bpf_prog_info>.size)
            if bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0 { total &+= info.recursion_misses }
        }
        return total
    }
}
