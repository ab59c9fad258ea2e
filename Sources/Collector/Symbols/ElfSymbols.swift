import CLibDW

/// A module's function symbols sorted by address, read once from whichever tables libdwfl found:
/// `.symtab` (of the binary or its separate debug file), else `.dynsym`, plus MiniDebugInfo's
/// `.gnu_debugdata`. `dwfl_module_addrinfo` answers the same question by a linear scan over every
/// symbol, which made a 140k-symbol binary cost a millisecond per address.
///
/// Names stay pointers into the module's string table (libdwfl keeps it mapped until `dwfl_end`, and
/// the owning `ModuleSymbols` outlives this table): libjvm.so has 58k symbols and only a few hundred are
/// ever looked up, so making a String of each, and sorting Strings, was most of the table's cost.
struct ElfSymbols {
    private var ranges = AddressRanges()
    private var names: [UnsafePointer<CChar>] = []

    init(_ module: OpaquePointer) {
        let count = dwfl_module_getsymtab(module)
        guard count > 0 else { return }
        var entries: [(start: UInt64, size: UInt64, rank: Int, name: UnsafePointer<CChar>)] = []
        entries.reserveCapacity(Int(count))
        for i in 0..<count {
            var sym = GElf_Sym()
            var addr: GElf_Addr = 0
            guard let name = dwfl_module_getsym_info(module, i, &sym, &addr, nil, nil, nil), name.pointee != 0 else { continue }
            let type = Int32(sym.st_info & 0xf)
            guard type == STT_FUNC || type == STT_GNU_IFUNC || (type == STT_NOTYPE && sym.st_shndx != SHN_UNDEF), sym.st_shndx != SHN_UNDEF
            else { continue }
            // Of several names for one address, prefer a global one over a weak one over a local one.
            let bind = Int32(sym.st_info >> 4)
            let rank = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2
            entries.append((addr, sym.st_size, rank, name))
        }
        entries.sort { ($0.start, $0.size == 0 ? 1 : 0, $0.rank) < ($1.start, $1.size == 0 ? 1 : 0, $1.rank) }
        var last: UInt64? = nil
        for e in entries where e.start != last {
            ranges.append(start: e.start, end: e.size > 0 ? e.start &+ e.size : 0)
            names.append(e.name)
            last = e.start
        }
        // A symbol without a size reaches to the next one (assembly often has no sizes).
        let starts = ranges.starts
        for (i, end) in ranges.ends.enumerated() where end == 0 {
            ranges.setEnd(i, i + 1 < starts.count ? starts[i + 1] : starts[i] &+ 1)
        }
    }

    /// The symbol covering a runtime address, and the address's offset from its start.
    func lookup(_ address: UInt64) -> (name: String, offset: UInt64)? {
        ranges.index(of: address).map { (String(cString: names[$0]), address - ranges.starts[$0]) }
    }
}
