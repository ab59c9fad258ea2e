import CLibDW
import Foundation
import SessionStore
import Tracking
import Vocabulary

/// Turns raw stacks into symbolized locations: function (demangled), offset, module, and file:line of
/// the call instruction (return address - 1). User frames go through elfutils' libdwfl, one handle per
/// module as it was loaded, so a library that has since been unloaded still resolves from its file;
/// kernel frames go through /proc/kallsyms. Each distinct address is symbolized once and becomes one
/// location the session stores once, however many stacks pass through it.
public final class Symbolizer {
    /// Every module of the session by its id, as registered; opened for symbols on first use.
    private var known: [Int64: SessionModule] = [:]
    private var modules: [Int64: ModuleSymbols?] = [:]
    private var locationIDs: [LocationKey: Int64] = [:]
    private let preloadedKernel: KernelSymbols?
    /// kallsyms is read once per collection: a source that already read it (the kernel side) hands it in.
    private lazy var kernel: KernelSymbols? = preloadedKernel ?? KernelSymbols.load()

    /// Kernel addresses are keyed under module -1, user addresses outside every module under 0.
    private struct LocationKey: Hashable {
        var module: Int64
        var address: UInt64
    }

    public init(kernelSymbols: KernelSymbols? = nil) {
        preloadedKernel = kernelSymbols
    }

    /// Makes modules known before stacks that lie in them are symbolized.
    public func register(_ modules: [SessionModule]) {
        for m in modules { known[m.sessionID] = m }
    }

    /// The session form of `stacks`: their records, and the locations first seen in them.
    public func symbolize(_ stacks: [NewStack]) -> (locations: [LocationRecord], stacks: [StackRecord]) {
        var newLocations: [LocationRecord] = []
        let records = stacks.map { s in
            StackRecord(
                id: s.id, space: s.space, origin: s.origin, truncated: s.truncated, mayBeIncomplete: s.mayBeIncomplete, taskPid: s.task?.pid,
                taskComm: s.task.map { $0.comm.description }, locations: s.frames.map { location(s.origin, $0, &newLocations) })
        }
        return (newLocations, records)
    }

    private func location(_ origin: StackOrigin, _ f: RawFrame, _ new: inout [LocationRecord]) -> Int64 {
        let key = LocationKey(module: origin == .kernel ? -1 : f.moduleID, address: f.address)
        if let id = locationIDs[key] { return id }
        let id = Int64(locationIDs.count + 1)
        locationIDs[key] = id
        let frames: [FrameRow]
        if origin == .kernel {
            frames = [kernel?.resolve(f.address) ?? FrameRow(address: f.address, module: "kernel")]
        } else if let m = known[f.moduleID] {
            let syms: ModuleSymbols?
            if let cached = modules[m.sessionID] {
                syms = cached
            } else {
                syms = ModuleSymbols(m)
                modules[m.sessionID] = syms
            }
            frames = syms?.resolve(f.address) ?? [FrameRow(address: f.address, module: m.info.path)]
        } else {
            frames = [FrameRow(address: f.address)]
        }
        let outer = frames.last
        new.append(
            LocationRecord(
                id: id, address: f.address, moduleID: origin == .kernel || f.moduleID == 0 ? nil : f.moduleID,
                moduleName: origin == .kernel ? outer?.module : nil, fileOffset: outer?.fileOffset, offset: outer?.offset,
                lines: frames.allSatisfy { $0.function == nil && $0.file == nil }
                    ? [] : frames.map { SymbolLine(function: $0.function, systemName: $0.systemName, file: $0.file, line: $0.line) }))
        return id
    }
}

/// Demangles C++ names (Itanium ABI); other names come back unchanged.
func demangle(_ name: String) -> String {
    guard name.hasPrefix("_Z") else { return name }
    var status: Int32 = 0
    guard let out = __cxa_demangle(name, nil, nil, &status) else { return name }
    defer { free(out) }
    return status == 0 ? String(cString: out) : name
}

/// libdwfl's callbacks for objects reported from files: find separate debuginfo by build-id or
/// .gnu_debuglink under the standard paths. libdwfl keeps a pointer to this, so it lives forever.
private let dwflCallbacks: UnsafeMutablePointer<Dwfl_Callbacks> = {
    let p = UnsafeMutablePointer<Dwfl_Callbacks>.allocate(capacity: 1)
    p.initialize(
        to: Dwfl_Callbacks(
            find_elf: dwfl_build_id_find_elf, find_debuginfo: dwfl_standard_find_debuginfo,
            section_address: dwfl_offline_section_address, debuginfo_path: nil))
    return p
}()

/// One module's symbols and line tables, placed at its load bias.
final class ModuleSymbols {
    private let dwfl: OpaquePointer
    private let module: OpaquePointer
    private let path: String

    /// nil when the file is gone, unreadable, or no longer the file that was loaded (build-id differs).
    init?(_ m: SessionModule) {
        guard let d = dwfl_begin(dwflCallbacks) else { return nil }
        dwfl_report_begin(d)
        // Only ever the descriptor the source opened the safe way (ModuleFile): given -1, libdwfl would
        // open the path the traced program claims, which may be a FIFO that blocks it forever.
        // libdwfl consumes the descriptor it is given; hand it a copy.
        guard let file = m.info.file else {
            dwfl_end(d)
            return nil
        }
        let fd = dup(file.fd)
        guard fd >= 0, let mod = dwfl_report_elf(d, m.info.path, m.info.path, fd, m.info.bias, false) else {
            dwfl_end(d)
            return nil
        }
        dwfl_report_end(d, nil, nil)
        if !m.info.buildID.isEmpty {
            var bits: UnsafePointer<UInt8>? = nil
            var vaddr: GElf_Addr = 0
            let n = dwfl_module_build_id(mod, &bits, &vaddr)
            if n > 0, let bits, Array(UnsafeBufferPointer(start: bits, count: Int(n))) != m.info.buildID {
                // The file on disk was replaced since it was loaded: its symbols would lie.
                dwfl_end(d)
                return nil
            }
        }
        dwfl = d
        module = mod
        path = m.info.path
    }

    deinit { dwfl_end(dwfl) }

    /// The frames at `address`, inlined calls first (one frame until inline scopes are expanded).
    func resolve(_ address: UInt64) -> [FrameRow] {
        var row = FrameRow(address: address, module: path)
        // Return addresses point after the call; the call itself is at address - 1.
        let pc = address &- 1
        var offset: GElf_Off = 0
        var sym = GElf_Sym()
        if let name = dwfl_module_addrinfo(module, pc, &offset, &sym, nil, nil, nil) {
            // Versioned symbols read "dlopen@GLIBC_2.2.5"; the version is noise in a stack.
            let raw = String(cString: name)
            row.function = demangle(raw.firstIndex(of: "@").map { String(raw[..<$0]) } ?? raw)
            row.offset = offset &+ 1
        }
        if let line = dwfl_module_getsrc(module, pc) {
            var lineNo: Int32 = 0
            var addr: Dwarf_Addr = 0
            if let file = dwfl_lineinfo(line, &addr, &lineNo, nil, nil, nil) {
                row.file = String(cString: file)
                row.line = Int(lineNo)
            }
        }
        return [row]
    }
}
