import CLibDW
import Glibc

/// Symbol names as people read them: Swift through the Swift runtime's own demangler, Rust (legacy
/// without its hash, and v0) through GNU libiberty, C++ through libstdc++'s `__cxa_demangle`. Each is
/// the demangler its language's own tools use, so names read the way the user's toolchain prints them.
public enum Demangler {
    /// The readable form of `raw`, or `raw` itself when it is not mangled (C) or does not demangle.
    /// A symbol version (`dlopen@GLIBC_2.2.5`) is dropped first: it is noise in a stack.
    public static func demangle(_ raw: String) -> String {
        let name = raw.utf8.firstIndex(of: UInt8(ascii: "@")).map { String(raw[..<$0]) } ?? raw
        if isSwift(name) { return swift(name) ?? name }
        if name.hasPrefix("_R") || isRustLegacy(name) { return rust(name) ?? cxx(name) ?? name }
        if name.hasPrefix("_Z") { return cxx(name) ?? name }
        return name
    }

    /// Swift 5+ (`$s`, `$e` embedded), Swift 4 (`$S`, `_T0`) manglings.
    static func isSwift(_ name: String) -> Bool {
        name.hasPrefix("$s") || name.hasPrefix("$S") || name.hasPrefix("$e") || name.hasPrefix("_T0") || name.hasPrefix("_$s")
    }

    /// Rust's legacy mangling is Itanium-shaped and ends in a `17h<16 hex digits>E` hash path element.
    static func isRustLegacy(_ name: String) -> Bool {
        guard name.hasPrefix("_ZN") else { return false }
        var bytes = Array(name.utf8)
        // LLVM may append ".llvm.NNNN" to a local symbol; the hash sits before it.
        let suffix = Array(".llvm.".utf8)
        if bytes.count > suffix.count,
            let at = (0...(bytes.count - suffix.count)).last(where: { bytes[$0..<($0 + suffix.count)].elementsEqual(suffix) })
        {
            bytes.removeSubrange(at...)
        }
        guard bytes.count > 23, bytes.last == UInt8(ascii: "E") else { return false }
        let hash = bytes[(bytes.count - 20)..<(bytes.count - 1)]
        guard hash.starts(with: Array("17h".utf8)) else { return false }
        return hash.dropFirst(3).allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    static func swift(_ name: String) -> String? {
        let out: UnsafeMutablePointer<CChar>? = name.withCString { swift_demangle($0, strlen($0), nil, nil, 0) }
        guard let out else { return nil }
        defer { free(out) }
        let s = String(cString: out)
        return s.isEmpty || s == name ? nil : s
    }

    static func rust(_ name: String) -> String? {
        // Options 0: without DMGL_VERBOSE libiberty leaves out the legacy hash and v0 crate disambiguators.
        guard let out = rust_demangle(name, 0) else { return nil }
        defer { free(out) }
        return String(cString: out)
    }

    static func cxx(_ name: String) -> String? {
        var status: Int32 = 0
        guard let out = __cxa_demangle(name, nil, nil, &status) else { return nil }
        defer { free(out) }
        return status == 0 ? String(cString: out) : nil
    }
}
