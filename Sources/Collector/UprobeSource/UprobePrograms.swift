import BPFSupport
import CLibBPF
import Glibc
import UprobeMultiLink

/// The uprobes BPF object (bpf/uprobes.bpf.c) loaded for one process, and the links that attach its
/// programs: an entry and a return probe on each allocator function of each allocator module, the
/// dynamic loader's hook, and the thread-exit tracepoint that forgets open calls.
final class UprobePrograms {
    /// The functions probed, in the order an alias (two names, one address) is named by: the first wins,
    /// so glibc's aligned_alloc, which is memalign, is reported as aligned_alloc, the C11 name.
    static let functions: [(name: String, function: ue_function)] = [
        ("malloc", UE_FN_MALLOC), ("calloc", UE_FN_CALLOC), ("realloc", UE_FN_REALLOC), ("reallocarray", UE_FN_REALLOCARRAY),
        ("posix_memalign", UE_FN_POSIX_MEMALIGN), ("aligned_alloc", UE_FN_ALIGNED_ALLOC), ("memalign", UE_FN_MEMALIGN),
        ("valloc", UE_FN_VALLOC), ("pvalloc", UE_FN_PVALLOC), ("free", UE_FN_FREE), ("mmap", UE_FN_MMAP), ("munmap", UE_FN_MUNMAP),
        ("mremap", UE_FN_MREMAP),
    ]
    /// Functions that only release: nothing to learn at their return.
    private static let entryOnly: Set<UInt32> = [UE_FN_FREE.rawValue, UE_FN_MUNMAP.rawValue]
    static var functionNames: Set<String> { Set(functions.map(\.name)) }

    let pid: Int32
    private let object: BPFObject
    private var links: [OpaquePointer] = []
    /// uprobe_multi links: one per module and direction.
    private var multiLinks: [Int32] = []
    private var loaderLinks: [OpaquePointer] = []
    private var control = ue_control()
    private var probedModules = 0
    private var probedIDs: Set<UInt64> = []
    /// Frames a stack-map entry holds.
    let depth: Int

    /// Sampling's mean interval in bytes (nil: every allocation is recorded).
    let sampleBytes: UInt64?

    init(pid: Int32, depth: Int, ringBufferBytes: UInt32, stackMapEntries: UInt32, sampleBytes: UInt64? = nil) throws(UprobeError) {
        self.sampleBytes = sampleBytes
        self.pid = pid
        self.depth = min(max(depth, 1), Int(UE_MAX_FRAMES))
        do {
            object = try BPFObject(named: "uprobes")
            if let m = object.map("events") { bpf_map__set_max_entries(m, ringBufferBytes) }
            if let m = object.map("stacks") {
                bpf_map__set_max_entries(m, stackMapEntries)
                bpf_map__set_value_size(m, UInt32(self.depth * 8))
            }
            if let m = object.map("sampled") { bpf_map__set_max_entries(m, UprobeSampling.setEntries(interval: sampleBytes)) }
            var config = ue_config()
            config.tgid = UInt32(bitPattern: pid)
            config.page_size = UInt32(sysconf(Int32(_SC_PAGESIZE)))
            UprobeSampling.configure(&config, interval: sampleBytes)
            try object.setReadOnly(config)
            for name in ["on_entry", "on_return"] {
                if let p = object.program(name) { bpf_program__set_expected_attach_type(p, bpf_attach_type(rawValue: UInt32(LEAK_BPF_TRACE_UPROBE_MULTI))) }
            }
            try object.load()
        } catch {
            throw .bpf(error)
        }
        guard let exit = object.program("on_exit"), let link = bpf_program__attach_raw_tracepoint(exit, "sched_process_exit") else {
            throw .attach(what: "the sched_process_exit tracepoint", errno: errno)
        }
        links.append(link)
    }

    deinit { detach() }

    /// Removes every probe: the process runs on untraced. Records already in the ring stay readable.
    func detach() {
        BPFLinks.destroyAll(links + loaderLinks)
        for fd in multiLinks { close(fd) }
        multiLinks.removeAll()
        links.removeAll()
        loaderLinks.removeAll()
    }

    var eventsFD: Int32 { object.mapFD("events") }
    var stacksFD: Int32 { object.mapFD("stacks") }

    /// The programs' counters, summed over the CPUs, indexed by `ue_counter`.
    func counters() -> [UInt64] { BPFObject.sumPerCPU(fd: object.mapFD("counters"), count: Int(UC_COUNT.rawValue)) }

    /// Probes the allocator functions `offsets` (name -> file offset) of the file at `path`, a module
    /// the process maps at [lo, hi). Returns the names probed (aliases of one address count once).
    @discardableResult
    func attachAllocator(path: String, offsets: [String: UInt64], lo: UInt64, hi: UInt64, module: UInt64) throws(UprobeError) -> [String] {
        guard probedModules < Int(UE_MAX_MODULES), probedIDs.insert(module).inserted else { return [] }
        var seen: Set<UInt64> = []
        var probed: [String] = []
        var entries: [(offset: UInt64, cookie: UInt64)] = []
        var returns: [(offset: UInt64, cookie: UInt64)] = []
        for (name, function) in Self.functions {
            guard let offset = offsets[name], seen.insert(offset).inserted else { continue }
            entries.append((offset, UInt64(function.rawValue)))
            if !Self.entryOnly.contains(function.rawValue) { returns.append((offset, UInt64(function.rawValue))) }
            probed.append(name)
        }
        try attachMulti("on_entry", path: path, entries, retprobe: false)
        try attachMulti("on_return", path: path, returns, retprobe: true)
        withUnsafeMutableBytes(of: &control.lo) { $0.storeBytes(of: lo, toByteOffset: probedModules * 8, as: UInt64.self) }
        withUnsafeMutableBytes(of: &control.hi) { $0.storeBytes(of: hi, toByteOffset: probedModules * 8, as: UInt64.self) }
        probedModules += 1
        try writeControl()
        return probed
    }

    func isProbed(_ module: UInt64) -> Bool { probedIDs.contains(module) }

    var hasLoaderHook: Bool { !loaderLinks.isEmpty }

    /// Hooks the dynamic loader's change notification (or, for a static program, its entry point) at
    /// `offset` of the file at `path`.
    func attachLoader(path: String, offset: UInt64) throws(UprobeError) {
        try attach("on_loader", path: path, offset: offset, cookie: 0, retprobe: false, what: "the dynamic loader", into: &loaderLinks)
    }

    func detachLoader() {
        for l in loaderLinks { bpf_link__destroy(l) }
        loaderLinks.removeAll()
    }

    /// Launch mode: whether the process stops (SIGSTOP) at the loader hook.
    func stopAtLoader(_ on: Bool) throws(UprobeError) {
        control.stop_at_loader = on ? 1 : 0
        try writeControl()
    }

    private func writeControl() throws(UprobeError) {
        var key: UInt32 = 0
        if bpf_map_update_elem(object.mapFD("control"), &key, &control, UInt64(BPF_ANY)) != 0 {
            throw .attach(what: "the control map", errno: errno)
        }
    }

    /// One uprobe_multi link for every (offset, cookie) of the file at `path`.
    private func attachMulti(_ programName: String, path: String, _ probes: [(offset: UInt64, cookie: UInt64)], retprobe: Bool) throws(UprobeError) {
        guard !probes.isEmpty else { return }
        guard let prog = object.program(programName) else { throw .bpf(BPFLoadError(name: "uprobes", detail: "no program \(programName)")) }
        let offsets = probes.map(\.offset), cookies = probes.map(\.cookie)
        let fd = leak_uprobe_multi_attach(bpf_program__fd(prog), path, offsets, cookies, UInt32(probes.count), pid, retprobe ? 1 : 0)
        guard fd >= 0 else { throw .attach(what: "the allocator functions of \(path)\(retprobe ? " (returns)" : "")", errno: -fd) }
        multiLinks.append(fd)
    }

    private func attach(
        _ programName: String, path: String, offset: UInt64, cookie: UInt64, retprobe: Bool, what: String, into list: inout [OpaquePointer]
    ) throws(UprobeError) {
        guard let prog = object.program(programName) else { throw .bpf(BPFLoadError(name: "uprobes", detail: "no program \(programName)")) }
        var opts = bpf_uprobe_opts()
        opts.sz = MemoryLayout<bpf_uprobe_opts>.size
        opts.bpf_cookie = cookie
        opts.retprobe = retprobe
        _ = LibBPFLog.take()
        guard let link = bpf_program__attach_uprobe_opts(prog, pid, path, Int(offset), &opts) else {
            let err = errno
            _ = LibBPFLog.take()
            throw .attach(what: "\(what) (\(path)+0x\(String(offset, radix: 16)))", errno: err)
        }
        list.append(link)
    }
}
