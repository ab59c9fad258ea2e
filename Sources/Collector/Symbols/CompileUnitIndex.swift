import CLibDW

/// Which DWARF compile unit covers an address, built once per module from every unit's own address
/// ranges. libdwfl finds units through `.debug_aranges`, which LLVM-based compilers (swiftc, clang,
/// rustc for some targets) do not emit, and elfutils before 0.191 does not rebuild it from the units:
/// without this index Swift code had no file or line at all.
struct CompileUnitIndex {
    private var starts: [UInt64] = []
    private var ends: [UInt64] = []
    private var offsets: [Dwarf_Off] = []

    init(_ dwarf: OpaquePointer) {
        var ranges: [(start: UInt64, end: UInt64, die: Dwarf_Off)] = []
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
                    if end > start { ranges.append((start, end, dieOffset)) }
                    at = dwarf_ranges(&die, at, &base, &start, &end)
                    guardCount += 1
                }
            }
            offset = next
        }
        ranges.sort { $0.start < $1.start }
        starts = ranges.map(\.start)
        ends = ranges.map(\.end)
        offsets = ranges.map(\.die)
    }

    /// The unit DIE's offset for a DWARF address (already without the module's bias).
    func unit(at address: UInt64) -> Dwarf_Off? {
        var lo = 0
        var hi = starts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if starts[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        // Ranges of different units do not overlap in a sane file; look back a few in case they do.
        var i = lo - 1
        while i >= 0 && i >= lo - 4 {
            if address < ends[i] { return offsets[i] }
            i -= 1
        }
        return nil
    }
}
