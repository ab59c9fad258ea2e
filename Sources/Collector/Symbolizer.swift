import CLibDW
import Foundation
import SessionStore

/// Turns raw stacks into symbolized frames: function (C++ demangled), offset, module, and file:line of
/// the call instruction (return address - 1). User frames go through elfutils' libdwfl, one handle per
/// module as it was loaded, so a library that has since been unloaded still resolves from its file;
/// kernel frames go through /proc/kallsyms. Results are cached per address.
public final class Symbolizer {
    private var modules: [Int64: ModuleSymbols?] = [:]
    private var cache: [FrameKey: FrameRow] = [:]
    private let preloadedKernel: KernelSymbols?
    /// kallsyms is read once per collection: a source that already read it (the kernel side) hands it in.
    private lazy var kernel: KernelSymbols? = preloadedKernel ?? KernelSymbols.load()

    private struct FrameKey: Hashable {
        var module: Int64
        var address: UInt64
    }

    public init(kernelSymbols: KernelSymbols? = nil) {
        preloadedKernel = kernelSymbols
    }

    public func symbolize(_ s: NewStack) -> StackRow {
        StackRow(id: s.id, origin: s.origin, truncated: s.truncated, frames: s.frames.map { frame(s.origin, $0) })
    }

    private func frame(_ origin: StackOrigin, _ f: RawFrame) -> FrameRow {
        let key = FrameKey(module: origin == .kernel ? -1 : (f.module?.sessionID ?? 0), address: f.address)
        if let hit = cache[key] { return hit }
        let row: FrameRow
        if origin == .kernel {
            row = kernel?.resolve(f.address) ?? FrameRow(address: f.address, module: "kernel")
        } else if let m = f.module {
            let syms: ModuleSymbols?
            if let cached = modules[m.sessionID] {
                syms = cached
            } else {
                syms = ModuleSymbols(m)
                modules[m.sessionID] = syms
            }
            row = syms?.resolve(f.address) ?? FrameRow(address: f.address, module: m.info.path)
        } else {
            row = FrameRow(address: f.address)
        }
        cache[key] = row
        return row
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
        // libdwfl consumes the descriptor it is given; hand it a copy of the one opened at load time.
        let fd = m.file.map { dup($0.fd) } ?? -1
        guard let mod = dwfl_report_elf(d, m.info.path, m.info.path, fd, m.info.bias, false) else {
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

    func resolve(_ address: UInt64) -> FrameRow {
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
        return row
    }
}
