import CLibDW
import Glibc

/// One function in the chain of calls at an address, as DWARF's scopes describe it.
struct ScopeFunction: Equatable {
    /// The symbol as the binary spells it (the linkage name when DWARF has one, else the plain name).
    var rawName: String?
    /// For an inlined call: where its caller called it (DW_AT_call_file / DW_AT_call_line).
    var callFile: String?
    var callLine: Int?
    var inlined: Bool
}

/// The functions of one compile unit by address, and the chain of inlined calls at an address:
/// each inlined call (DW_TAG_inlined_subroutine) innermost first, then the function the code
/// physically belongs to (DW_TAG_subprogram), as eu-addr2line -i and llvm-symbolizer --inlines show.
///
/// Written over libdw's DIE reader rather than with `dwarf_getscopes`, which gives up on the whole unit
/// at the first DIE whose address it cannot read (rustc's standard library has such DIEs, so its
/// inlined frames were lost) and walks every top-level DIE of the unit again for each address. Here a
/// unit's functions are indexed once, and an address walks only its own function's DIEs.
final class UnitFunctions {
    private var ranges = AddressRanges()
    private var dies: [Dwarf_Off] = []
    private let dwarf: OpaquePointer
    private var files: OpaquePointer? = nil
    private var fileCount = 0
    private var filesRead = false
    private var unit: Dwarf_Die

    /// DIEs a function definition can be nested in without addresses of its own: Rust and C++
    /// namespaces, Swift modules, types holding methods.
    private static let containers: Set<Int32> = [
        Int32(DW_TAG_namespace), Int32(DW_TAG_module), Int32(DW_TAG_structure_type), Int32(DW_TAG_class_type),
        Int32(DW_TAG_union_type), Int32(DW_TAG_interface_type), Int32(DW_TAG_enumeration_type),
    ]
    /// A hostile file could nest DIEs without end; real code is nowhere near this deep.
    private static let maxDepth = 256

    init(dwarf: OpaquePointer, unit: Dwarf_Die) {
        self.dwarf = dwarf
        self.unit = unit
        var entries: [(UInt64, UInt64, Dwarf_Off)] = []
        collect(under: unit, depth: 0, into: &entries)
        entries.sort { $0.0 < $1.0 }
        for e in entries { ranges.append(start: e.0, end: e.1) }
        dies = entries.map(\.2)
    }

    private func collect(under parent: Dwarf_Die, depth: Int, into entries: inout [(UInt64, UInt64, Dwarf_Off)]) {
        guard depth < Self.maxDepth else { return }
        var parent = parent
        var die = Dwarf_Die()
        guard dwarf_child(&parent, &die) == 0 else { return }
        repeat {
            let tag = dwarf_tag(&die)
            if tag == DW_TAG_subprogram {
                let offset = dwarf_dieoffset(&die)
                forEachRange(&die) { entries.append(($0, $1, offset)) }
            } else if Self.containers.contains(tag) {
                collect(under: die, depth: depth + 1, into: &entries)
            }
        } while next(&die)
    }

    /// Moves `die` to its next sibling; false at the last one.
    private func next(_ die: inout Dwarf_Die) -> Bool {
        var sibling = Dwarf_Die()
        guard dwarf_siblingof(&die, &sibling) == 0 else { return false }
        die = sibling
        return true
    }

    private func forEachRange(_ die: UnsafeMutablePointer<Dwarf_Die>, _ body: (UInt64, UInt64) -> Void) {
        var base: Dwarf_Addr = 0
        var start: Dwarf_Addr = 0
        var end: Dwarf_Addr = 0
        var at = dwarf_ranges(die, 0, &base, &start, &end)
        var n = 0
        while at > 0 && n < 1 << 16 {
            if end > start { body(start, end) }
            at = dwarf_ranges(die, at, &base, &start, &end)
            n += 1
        }
    }

    private func contains(_ die: UnsafeMutablePointer<Dwarf_Die>, _ address: UInt64) -> Bool {
        var hit = false
        forEachRange(die) { s, e in if address >= s && address < e { hit = true } }
        return hit
    }

    /// The chain at a DWARF address (without the module's bias), innermost first; empty when no
    /// function of this unit covers it.
    func chain(at address: UInt64) -> [ScopeFunction] {
        guard let i = ranges.index(of: address) else { return [] }
        var function = Dwarf_Die()
        guard dwarf_offdie(dwarf, dies[i], &function) != nil else { return [] }
        var out = [ScopeFunction(rawName: Self.name(&function), inlined: false)]
        // Down from the function: at each level the child whose ranges hold the address. Lexical
        // blocks are passed through; each inlined call is a frame.
        var scope = function
        var depth = 0
        descend: while depth < Self.maxDepth {
            depth += 1
            var child = Dwarf_Die()
            guard dwarf_child(&scope, &child) == 0 else { break }
            repeat {
                let tag = dwarf_tag(&child)
                guard tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block else { continue }
                guard contains(&child, address) else { continue }
                if tag == DW_TAG_inlined_subroutine { out.append(inlined(&child)) }
                scope = child
                continue descend
            } while next(&child)
            break
        }
        return out.reversed()
    }

    private func inlined(_ die: UnsafeMutablePointer<Dwarf_Die>) -> ScopeFunction {
        var f = ScopeFunction(rawName: Self.name(die), inlined: true)
        if !filesRead {
            filesRead = true
            if dwarf_getsrcfiles(&unit, &files, &fileCount) != 0 { files = nil }
        }
        var attr = Dwarf_Attribute()
        var value: Dwarf_Word = 0
        if dwarf_formudata(dwarf_attr(die, UInt32(DW_AT_call_file), &attr), &value) == 0, let files, value < fileCount,
            let path = dwarf_filesrc(files, Int(value), nil, nil)
        {
            f.callFile = String(cString: path)
        }
        if dwarf_formudata(dwarf_attr(die, UInt32(DW_AT_call_line), &attr), &value) == 0, value > 0, value <= Int32.max {
            f.callLine = Int(value)
        }
        return f
    }

    /// The linkage (mangled) name through abstract origins and specifications, else the plain name.
    private static func name(_ die: UnsafeMutablePointer<Dwarf_Die>) -> String? {
        var attr = Dwarf_Attribute()
        for at in [DW_AT_linkage_name, DW_AT_MIPS_linkage_name] {
            if let s = dwarf_formstring(dwarf_attr_integrate(die, UInt32(at), &attr)) { return String(cString: s) }
        }
        return dwarf_diename(die).map { String(cString: $0) }
    }
}
