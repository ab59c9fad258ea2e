import CLibBPF
import Foundation

/// Why one of this build's BPF objects could not be opened, configured or loaded. `detail` is the
/// telling line (libbpf's or the verifier's last complaint, or errno's text).
public struct BPFLoadError: Error, CustomStringConvertible, Equatable {
    public let name: String
    public let detail: String

    public init(name: String, detail: String) {
        self.name = name
        self.detail = detail
    }

    public var description: String { "cannot load the BPF programs of \(name): \(detail)" }
}

/// One of this build's BPF objects (`bpf/NAME.bpf.c`, compiled and embedded by the BPFCompile plugin),
/// opened from memory. Configure it (map sizes, the `cfg` variable in .rodata) between `init` and
/// `load`; closing it (deinit) unloads its programs and maps, so links must be destroyed first.
public final class BPFObject {
    public let name: String
    /// The libbpf `bpf_object`.
    public let handle: OpaquePointer
    /// The ELF image libbpf reads from until load; kept alive and unmoved as long as the object.
    private let image: Data

    public init(named name: String) throws(BPFLoadError) {
        LibBPFLog.install()
        guard let text = BPFObjects.base64[name], let data = Data(base64Encoded: text) else {
            throw BPFLoadError(name: name, detail: "not embedded in this build")
        }
        let obj = data.withUnsafeBytes { raw -> OpaquePointer? in bpf_object__open_mem(raw.baseAddress, raw.count, nil) }
        guard let obj else { throw BPFLoadError(name: name, detail: String(cString: strerror(errno))) }
        self.name = name
        self.image = data
        self.handle = obj
    }

    deinit { bpf_object__close(handle) }

    public func map(_ mapName: String) -> OpaquePointer? { bpf_object__find_map_by_name(handle, mapName) }

    public func program(_ programName: String) -> OpaquePointer? { bpf_object__find_program_by_name(handle, programName) }

    /// The file descriptor of a loaded map, or -1.
    public func mapFD(_ mapName: String) -> Int32 { map(mapName).map { bpf_map__fd($0) } ?? -1 }

    /// Loads every program and creates the maps; the verifier's complaint is the error's detail.
    public func load() throws(BPFLoadError) {
        _ = LibBPFLog.take()
        if bpf_object__load(handle) != 0 {
            let err = errno
            throw BPFLoadError(name: name, detail: LibBPFLog.summary(LibBPFLog.take()) ?? String(cString: strerror(err)))
        }
    }

    /// Writes `value` into the object's global `variable` in .rodata, found through the object's BTF
    /// (the variable's offset in the section), before the load freezes it. Its size must be `T`'s.
    public func setReadOnly<T>(_ value: T, variable: String = "cfg") throws(BPFLoadError) {
        var rodata: OpaquePointer?
        var m = bpf_object__next_map(handle, nil)
        while let current = m {
            if String(cString: bpf_map__name(current)).hasSuffix(".rodata") { rodata = current }
            m = bpf_object__next_map(handle, current)
        }
        guard let rodata, let btf = bpf_object__btf(handle) else { throw BPFLoadError(name: name, detail: "no .rodata or BTF") }
        // The section's DATASEC type is the only BTF type named ".rodata".
        let sec = btf__find_by_name(btf, ".rodata")
        guard sec > 0, let t = btf__type_by_id(btf, UInt32(sec)) else { throw BPFLoadError(name: name, detail: "no .rodata section in BTF") }
        var offset: Int?
        let vars = btf_var_secinfos(t)
        for i in 0..<Int(btf_vlen(t)) {
            guard let v = vars?[i], let vt = btf__type_by_id(btf, v.type), let vname = btf__name_by_offset(btf, vt.pointee.name_off) else { continue }
            if String(cString: vname) == variable {
                guard Int(v.size) == MemoryLayout<T>.size else {
                    throw BPFLoadError(name: name, detail: "\(variable) is \(v.size) bytes, expected \(MemoryLayout<T>.size)")
                }
                offset = Int(v.offset)
            }
        }
        var size = 0
        guard let offset, let current = bpf_map__initial_value(rodata, &size), offset + MemoryLayout<T>.size <= size else {
            throw BPFLoadError(name: name, detail: "no \(variable) variable in .rodata")
        }
        var bytes = [UInt8](UnsafeRawBufferPointer(start: current, count: size))
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: T.self) }
        if bpf_map__set_initial_value(rodata, bytes, size) != 0 {
            throw BPFLoadError(name: name, detail: "cannot set .rodata: \(String(cString: strerror(errno)))")
        }
    }

    /// A per-CPU array of u64 counters, each summed over the CPUs.
    public static func sumPerCPU(fd: Int32, count: Int) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: count)
        guard fd >= 0 else { return out }
        let cpus = max(Int(libbpf_num_possible_cpus()), 1)
        var values = [UInt64](repeating: 0, count: cpus)
        for i in 0..<count {
            var key = UInt32(i)
            if bpf_map_lookup_elem(fd, &key, &values) == 0 { out[i] = values.reduce(0, &+) }
        }
        return out
    }
}
