import CLibDW
import Glibc

/// What BPF-only mode needs to know about one ELF file a traced process maps: where its segments go
/// (for the load bias and the address range), its build-id, its program interpreter, and the file
/// offsets of the functions to probe. Read through libelf from a descriptor the collector opened the
/// safe way (`ModuleFile`); nothing in the file is trusted beyond what libelf validates.
struct ElfFacts {
    struct Segment {
        var vaddr: UInt64
        var memsz: UInt64
        var offset: UInt64
        var executable: Bool
    }

    var segments: [Segment]
    var buildID: [UInt8]
    /// PT_INTERP: the dynamic loader the kernel maps for an executable; nil for a library or a static program.
    var interpreter: String?
    /// Defined functions among the names asked for, by name: their offset in the file.
    var functions: [String: UInt64]
    /// The file offset of the entry point, when a segment holds it.
    var entryOffset: UInt64?

    /// Reads `fd` (left open); nil when it is not an ELF object libelf can read.
    static func read(fd: Int32, functions wanted: Set<String>) -> ElfFacts? {
        _ = elf_version(UInt32(EV_CURRENT))
        guard let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else { return nil }
        defer { elf_end(elf) }
        guard elf_kind(elf) == ELF_K_ELF else { return nil }
        var facts = ElfFacts(segments: [], buildID: [], interpreter: nil, functions: [:], entryOffset: nil)
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else { return nil }
        for i in 0..<count {
            var ph = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(i), &ph) != nil else { continue }
            if ph.p_type == PT_LOAD {
                facts.segments.append(Segment(vaddr: ph.p_vaddr, memsz: ph.p_memsz, offset: ph.p_offset, executable: ph.p_flags & UInt32(PF_X) != 0))
            } else if ph.p_type == PT_INTERP, ph.p_filesz > 1, ph.p_filesz < 4096 {
                var bytes = [UInt8](repeating: 0, count: Int(ph.p_filesz))
                if pread(fd, &bytes, bytes.count, off_t(ph.p_offset)) == bytes.count {
                    facts.interpreter = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
            }
        }
        guard !facts.segments.isEmpty else { return nil }
        var eh = GElf_Ehdr()
        if gelf_getehdr(elf, &eh) != nil, let seg = facts.segments.first(where: { eh.e_entry >= $0.vaddr && eh.e_entry < $0.vaddr &+ $0.memsz }) {
            facts.entryOffset = eh.e_entry - seg.vaddr + seg.offset
        }
        var bits: UnsafeRawPointer?
        let n = dwelf_elf_gnu_build_id(elf, &bits)
        if n > 0, let bits { facts.buildID = Array(UnsafeRawBufferPointer(start: bits, count: Int(n))) }
        if !wanted.isEmpty { facts.functions = Self.functions(elf, wanted: wanted, segments: facts.segments) }
        return facts
    }

    /// Defined function symbols of .dynsym and .symtab with the wanted names, as file offsets.
    private static func functions(_ elf: OpaquePointer, wanted: Set<String>, segments: [Segment]) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        var scn = elf_nextscn(elf, nil)
        while let s = scn {
            defer { scn = elf_nextscn(elf, s) }
            var sh = GElf_Shdr()
            guard gelf_getshdr(s, &sh) != nil, sh.sh_type == SHT_DYNSYM || sh.sh_type == SHT_SYMTAB, sh.sh_entsize > 0,
                let data = elf_getdata(s, nil)
            else { continue }
            let n = Int(sh.sh_size / sh.sh_entsize)
            for i in 0..<n {
                var sym = GElf_Sym()
                guard gelf_getsym(data, Int32(i), &sym) != nil, sym.st_shndx != UInt16(SHN_UNDEF), sym.st_value != 0 else { continue }
                let type = Int32(sym.st_info & 0xf)
                guard type == STT_FUNC || type == STT_GNU_IFUNC, let cname = elf_strptr(elf, Int(sh.sh_link), Int(sym.st_name)) else { continue }
                let name = String(cString: cname)
                guard wanted.contains(name), out[name] == nil else { continue }
                // The file offset the uprobe goes at: through the PT_LOAD that holds the address.
                if let seg = segments.first(where: { sym.st_value >= $0.vaddr && sym.st_value < $0.vaddr &+ $0.memsz }) {
                    out[name] = sym.st_value - seg.vaddr + seg.offset
                }
            }
        }
        return out
    }

    /// The address range of the PT_LOAD segments once loaded with `bias`, hi exclusive.
    func range(bias: UInt64) -> (lo: UInt64, hi: UInt64) {
        let lo = segments.map(\.vaddr).min() ?? 0
        let hi = segments.map { $0.vaddr &+ $0.memsz }.max() ?? 0
        return (bias &+ lo, bias &+ hi)
    }

    /// The load bias, given where the segment at page-aligned file `offset` was mapped; nil when no
    /// segment starts in that page.
    func bias(mappedAt start: UInt64, fileOffset offset: UInt64, pageSize: UInt64) -> UInt64? {
        let mask = ~(pageSize - 1)
        guard let seg = segments.first(where: { $0.offset & mask == offset }) else { return nil }
        return start &- (seg.vaddr & mask)
    }
}
