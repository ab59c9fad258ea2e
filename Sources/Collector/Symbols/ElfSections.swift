import CLibDW

/// The named sections of an ELF file, in file order: the one walk the debug-file search (altlinks) and
/// the decompressed-debug cache (compressed DWARF) both need.
enum ElfSections {
    /// Calls `body` with each section that has a header and a name, until it returns false.
    static func forEach(in elf: OpaquePointer, _ body: (_ section: OpaquePointer, _ header: GElf_Shdr, _ name: String) -> Bool) {
        var shstrndx = 0
        guard elf_getshdrstrndx(elf, &shstrndx) == 0 else { return }
        var scn = elf_nextscn(elf, nil)
        while let s = scn {
            var shdr = GElf_Shdr()
            if gelf_getshdr(s, &shdr) != nil, let name = elf_strptr(elf, shstrndx, Int(shdr.sh_name)) {
                guard body(s, shdr, String(cString: name)) else { return }
            }
            scn = elf_nextscn(elf, s)
        }
    }
}
