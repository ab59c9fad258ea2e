import CLibDW

/// Which DWARF compile unit covers an address, built once per module from every unit's own address
/// ranges. libdwfl finds units through `.debug_aranges`, which LLVM-based compilers (swiftc, clang,
/// rustc for some targets) do not emit, and elfutils before 0.191 does not rebuild it from the units:
/// without this index Swift code had no file or line at all.
struct CompileUnitIndex {
    private var ranges = AddressRanges()
    private var offsets: [Dwarf_Off] = []

    init(_ dwarf: OpaquePointer) {
        var found: [(start: UInt64, end: UInt64, die: Dwarf_Off)] = []
        var offset: Dwarf_Off = 0
        var next: Dwarf_Off = 0
        var headerSize = 0
        while dwarf_nextcu(dwarf, offset, &next, &headerSize, nil, nil, nil) == 0 {
            let dieOffset = offset + Dwarf_Off(headerSize)
            var die = Dwarf_Die()
            if dwarf_offdie(dwarf, dieOffset, &die) != nil {
                var base: Dwarf_Addr = 0
                var start: Dwarf_Addr = 0
                var end: Dwarf_Addr = 0
                var at = dwarf_ranges(&die, 0, &base, &start, &end)
                // A hostile file could loop its range list; a unit has far fewer ranges than this.
                var guardCount = 0
                while at > 0 && guardCount < 1 << 20 {
                    if end > start { found.append((start, end, dieOffset)) }
                    at = dwarf_ranges(&die, at, &base, &start, &end)
                    guardCount += 1
                }
            }
            offset = next
        }
        found.sort { $0.start < $1.start }
        for r in found { ranges.append(start: r.start, end: r.end) }
        offsets = found.map(\.die)
    }

    /// The unit DIE's offset for a DWARF address (already without the module's bias).
    func unit(at address: UInt64) -> Dwarf_Off? {
        ranges.index(of: address).map { offsets[$0] }
    }
}
