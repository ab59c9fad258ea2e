import CLibDW
import Glibc
import SessionStore
import Tracking
import Vocabulary

/// One module's symbols and DWARF, placed at its load bias: the ELF symbol (`.symtab`, else `.dynsym`,
/// else MiniDebugInfo's `.gnu_debugdata`, from the binary or its separate debug file), the line of the
/// call, and the inlined calls at it. libdwfl reads compressed debug sections and MiniDebugInfo itself.
final class ModuleSymbols {
    private let dwfl: OpaquePointer
    private let module: OpaquePointer
    private let path: String
    private let buildID: String?
    /// Kept alive for libdwfl's debuginfo callback, which finds it through the module's userdata.
    private let search: DebugInfoSearch
    /// PT_LOAD segments as (vaddr, memsz, file offset), for the file offset of every address.
    private var segments: [(vaddr: UInt64, size: UInt64, offset: UInt64)] = []
    private var elfBias: UInt64 = 0
    /// The DWARF, found on first use (it may live in a separate file); nil inside when there is none.
    private var dwarf: (dw: OpaquePointer, bias: UInt64, units: CompileUnitIndex)??
    private lazy var symbols = ElfSymbols(module)
    /// Readable names by raw name: the many addresses of one function demangle once.
    private var names: [String: (function: String, systemName: String?)] = [:]
    /// Each compile unit's functions, indexed on first use.
    private var unitFunctions: [Dwarf_Off: UnitFunctions] = [:]

    /// nil when the module has no opened file, or the file is no longer the one that was loaded (its
    /// build-id differs).
    init?(_ m: SessionModule, debugRoots: [String], pid: Int32?) {
        // Only ever the descriptor the source opened the safe way (ModuleFile): given -1, libdwfl would
        // open the path the traced program claims, which may be a FIFO that blocks it forever.
        guard let file = m.info.file, let d = dwfl_begin(dwflCallbacks) else { return nil }
        dwfl_report_begin(d)
        // libdwfl consumes the descriptor it is given; hand it a copy.
        let fd = fcntl(file.fd, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0, let mod = dwfl_report_elf(d, m.info.path, m.info.path, fd, m.info.bias, false) else {
            if fd >= 0 { close(fd) }
            dwfl_end(d)
            return nil
        }
        dwfl_report_end(d, nil, nil)
        var bits: UnsafePointer<UInt8>? = nil
        var vaddr: GElf_Addr = 0
        let n = dwfl_module_build_id(mod, &bits, &vaddr)
        let fileBuildID = n > 0 && bits != nil ? Array(UnsafeBufferPointer(start: bits, count: Int(n))) : []
        if !m.info.buildID.isEmpty && !fileBuildID.isEmpty && fileBuildID != m.info.buildID {
            // The file on disk was replaced since it was loaded: its symbols would lie.
            dwfl_end(d)
            return nil
        }
        dwfl = d
        module = mod
        path = m.info.path
        buildID = m.buildIDHex.isEmpty ? nil : m.buildIDHex
        search = DebugInfoSearch(roots: debugRoots, pid: pid)
        var userdata: UnsafeMutablePointer<UnsafeMutableRawPointer?>? = nil
        _ = dwfl_module_info(mod, &userdata, nil, nil, nil, nil, nil, nil)
        userdata?.pointee = Unmanaged.passUnretained(search).toOpaque()
        readSegments()
    }

    deinit { dwfl_end(dwfl) }

    private func readSegments() {
        var bias: GElf_Addr = 0
        guard let elf = dwfl_module_getelf(module, &bias) else { return }
        elfBias = bias
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else { return }
        for i in 0..<min(count, 4096) {
            var ph = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(i), &ph) != nil, ph.p_type == PT_LOAD else { continue }
            segments.append((ph.p_vaddr, ph.p_memsz, ph.p_offset))
        }
    }

    /// Where `address` lies in the module's file: what `[dash+0x1a2b3]` shows, and what addr2line
    /// takes on another machine.
    func fileOffset(_ address: UInt64) -> UInt64? {
        let v = address &- elfBias
        guard let s = segments.first(where: { v >= $0.vaddr && v - $0.vaddr < $0.size }) else { return nil }
        // A hostile p_offset can put the sum past 2^64: such a file has no offset to show.
        let (offset, overflow) = (v - s.vaddr).addingReportingOverflow(s.offset)
        return overflow ? nil : offset
    }

    private func loadDwarf() -> (dw: OpaquePointer, bias: UInt64, units: CompileUnitIndex)? {
        if let cached = dwarf { return cached }
        var bias: Dwarf_Addr = 0
        let found = dwfl_module_getdwarf(module, &bias).map { (dw: $0, bias: UInt64(bias), units: CompileUnitIndex($0)) }
        dwarf = .some(found)
        return found
    }

    /// The frames at a return address: inlined calls innermost first, each with its own file and line,
    /// then the function the code belongs to, with the line of the call its inlined callee stands for.
    func resolve(_ address: UInt64) -> [FrameRow] {
        // Return addresses point after the call; the call itself is at address - 1.
        let pc = address &- 1
        var outer = FrameRow(address: address, module: path, buildID: buildID, fileOffset: fileOffset(address))
        if let symbol = symbols.lookup(pc) {
            name(outer: &outer, raw: symbol.name)
            outer.offset = symbol.offset &+ 1
        }
        guard let dw = loadDwarf(), let unitOffset = dw.units.unit(at: pc &- dw.bias) else { return [outer] }
        var unit = Dwarf_Die()
        guard dwarf_offdie(dw.dw, unitOffset, &unit) != nil else { return [outer] }
        let dwarfPC = pc &- dw.bias
        var file: String? = nil
        var line: Int? = nil
        if let l = dwarf_getsrc_die(&unit, dwarfPC) {
            var n: Int32 = 0
            if dwarf_lineno(l, &n) == 0, n > 0 { line = Int(n) }
            file = dwarf_linesrc(l, nil, nil).map { String(cString: $0) }
        }
        let functions: UnitFunctions
        if let cached = unitFunctions[unitOffset] {
            functions = cached
        } else {
            functions = UnitFunctions(dwarf: dw.dw, unit: unit)
            unitFunctions[unitOffset] = functions
        }
        let chain = functions.chain(at: dwarfPC)
        var frames: [FrameRow] = []
        for scope in chain where scope.inlined {
            var f = FrameRow(address: address, module: path, buildID: buildID, fileOffset: outer.fileOffset, file: file, line: line, inlined: true)
            if let raw = scope.rawName { name(outer: &f, raw: raw) }
            frames.append(f)
            // The caller's line is where it called the inlined function.
            file = scope.callFile
            line = scope.callLine
        }
        // The ELF symbol names the physical function (its offset is from that symbol); DWARF names it
        // when there is no symbol.
        if outer.function == nil, let raw = chain.last(where: { !$0.inlined })?.rawName { name(outer: &outer, raw: raw) }
        outer.file = file
        outer.line = line
        frames.append(outer)
        return frames
    }

    private func name(outer f: inout FrameRow, raw: String) {
        if let known = names[raw] {
            (f.function, f.systemName) = known
            return
        }
        // Versioned symbols read "dlopen@GLIBC_2.2.5"; the version is noise in a stack.
        let bare = raw.utf8.firstIndex(of: UInt8(ascii: "@")).map { String(raw[..<$0]) } ?? raw
        let readable = Demangler.demangle(bare)
        let entry = (readable, readable == bare ? nil : bare)
        names[raw] = entry
        (f.function, f.systemName) = entry
    }
}
