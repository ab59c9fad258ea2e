import CLibDW
import CZlib
import Glibc
import Vocabulary

/// Finds a module's separate debug file the way gdb and perf do, for binaries whose DWARF (or
/// `.symtab`) was split off (Debian's `-dbgsym` packages, `objcopy --only-keep-debug`):
/// `ROOT/.build-id/xx/yyyy….debug` for each debug root, then the `.gnu_debuglink` name next to the
/// binary, in its `.debug/` directory and under each root. libdwfl's standard search does the same,
/// but opens every candidate with a plain open(): the binary's path and its debuglink name come from
/// the traced program, which could put a FIFO there and hang a root collector. Here every candidate
/// goes through `ModuleFile.open(regularFileAt:)` and is accepted only when its build-id (or the
/// debuglink's CRC) matches.
final class DebugInfoSearch {
    /// Debug roots, `/usr/lib/debug` by default.
    let roots: [String]
    /// The traced process, for its own view of its files (a container's root); nil when unknown.
    let pid: Int32?

    /// libdwfl asks once for the symbol table and again for DWARF: the answer, per debuglink name.
    private var answers: [String: (file: ModuleFile, path: String)?] = [:]
    /// Where a debug file found with compressed DWARF is read decompressed; nil: read as found.
    private let cache: DecompressedDebugCache?

    init(roots: [String], pid: Int32?, cache: DecompressedDebugCache? = .standard) {
        self.roots = roots
        self.pid = pid
        self.cache = cache
    }

    /// The debug file for a module, opened for reading; the caller owns the descriptor. A request with
    /// a name and no CRC is for a dwz alternate file (`.gnu_debugaltlink`: DWARF several binaries of a
    /// package share), which must carry the build-id the altlink names; `mainElf` is the binary, in
    /// case its DWARF (and so its altlink) is its own.
    func find(buildID: [UInt8], binaryPath: String?, debuglink: String?, crc: UInt32, mainElf: OpaquePointer?) -> (fd: Int32, path: String)? {
        let key = "\(debuglink ?? "")\u{0}\(crc)"
        if answers[key] == nil {
            var found: (file: ModuleFile, path: String)?
            var foundID = buildID
            if crc == 0, let link = debuglink, !link.isEmpty {
                foundID = alternateBuildID(mainElf: mainElf)
                found = searchAlternate(link: link, near: binaryPath, buildID: foundID)
            } else {
                found = search(buildID: buildID, binaryPath: binaryPath, debuglink: debuglink, crc: crc)
            }
            // The decompressed copy, under the name of the file it copies (what libdw and reports show).
            if let f = found, let copy = cache?.decompressed(f.file, buildID: foundID) { found = (copy, f.path) }
            answers[key] = .some(found)
        }
        guard let found = answers[key] ?? nil, let fd = Self.dupFD(found.file) else { return nil }
        return (fd, found.path)
    }

    private func search(buildID: [UInt8], binaryPath: String?, debuglink: String?, crc: UInt32) -> (file: ModuleFile, path: String)? {
        if let found = byBuildID(buildID) { return found }
        guard let link = debuglink, !link.isEmpty, crc != 0 else { return nil }
        for path in candidates(link: link, binaryPath: binaryPath) {
            guard let f = ModuleFile.open(regularFileAt: path) else { continue }
            if Self.crc32(of: f.fd) == crc { return (f, path) }
        }
        return nil
    }

    /// ROOT/.build-id/xx/rest.debug, checked to carry that build-id.
    private func byBuildID(_ buildID: [UInt8]) -> (file: ModuleFile, path: String)? {
        guard buildID.count > 1 else { return nil }
        let hex = Self.hex(buildID)
        for root in roots {
            let path = "\(root)/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug"
            if let f = ModuleFile.open(regularFileAt: path), Self.buildID(of: f.fd) == buildID { return (f, path) }
        }
        return nil
    }

    /// A dwz alternate: by its build-id under the roots, else at the name the altlink gives (absolute,
    /// or relative to the file that names it); only ever the file with exactly that build-id.
    private func searchAlternate(link: String, near file: String?, buildID: [UInt8]) -> (file: ModuleFile, path: String)? {
        guard !buildID.isEmpty else { return nil }
        if let found = byBuildID(buildID) { return found }
        var paths: [String] = []
        if link.hasPrefix("/") {
            if let pid { paths.append("/proc/\(pid)/root\(link)") }
            paths.append(link)
        } else if let file, let slash = file.lastIndex(of: "/") {
            paths.append(String(file[..<slash]) + "/" + link)
        }
        for path in paths {
            if let f = ModuleFile.open(regularFileAt: path), Self.buildID(of: f.fd) == buildID { return (f, path) }
        }
        return nil
    }

    /// The build-id a `.gnu_debugaltlink` section names (after the file name and its NUL), in the
    /// debug file found for this module if there is one, else in the binary itself.
    private func alternateBuildID(mainElf: OpaquePointer?) -> [UInt8] {
        for case let (_, found?) in answers {
            guard let elf = elf_begin(found.file.fd, ELF_C_READ_MMAP, nil) else { continue }
            defer { elf_end(elf) }
            let id = Self.altlinkBuildID(elf)
            if !id.isEmpty { return id }
        }
        return mainElf.map(Self.altlinkBuildID) ?? []
    }

    static func altlinkBuildID(_ elf: OpaquePointer) -> [UInt8] {
        var id: [UInt8] = []
        ElfSections.forEach(in: elf) { s, _, name in
            guard name == ".gnu_debugaltlink", let data = elf_getdata(s, nil), let bytes = data.pointee.d_buf else { return true }
            let all = Array(UnsafeRawBufferPointer(start: bytes, count: Int(data.pointee.d_size)))
            if let nul = all.firstIndex(of: 0) { id = Array(all[(nul + 1)...]) }
            return false
        }
        return id
    }

    /// Where gdb looks for a debuglink name: beside the binary, in its .debug/, under each root.
    func candidates(link: String, binaryPath: String?) -> [String] {
        // A debuglink is a plain file name; anything else is not one.
        guard !link.contains("/") else { return [] }
        var dirs: [String] = []
        if let binaryPath, binaryPath.hasPrefix("/"), let slash = binaryPath.lastIndex(of: "/") {
            let dir = String(binaryPath[..<slash])
            if let pid { dirs += ["/proc/\(pid)/root\(dir)", "/proc/\(pid)/root\(dir)/.debug"] }
            dirs += [dir, dir + "/.debug"]
            dirs += roots.map { $0 + dir }
        }
        dirs += roots
        var seen = Set<String>()
        return dirs.map { "\($0)/\(link)" }.filter { seen.insert($0).inserted }
    }

    /// A build-id as the `.build-id` tree names it: lower-case hex.
    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    private static func dupFD(_ f: ModuleFile) -> Int32? {
        let fd = fcntl(f.fd, F_DUPFD_CLOEXEC, 0)
        return fd >= 0 ? fd : nil
    }

    /// The GNU build-id note of an ELF file, or empty.
    static func buildID(of fd: Int32) -> [UInt8] {
        guard let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else { return [] }
        defer { elf_end(elf) }
        var bits: UnsafeRawPointer? = nil
        let n = dwelf_elf_gnu_build_id(elf, &bits)
        guard n > 0, let bits else { return [] }
        return Array(UnsafeRawBufferPointer(start: bits, count: n))
    }

    /// CRC-32 of a whole file, as .gnu_debuglink records it.
    static func crc32(of fd: Int32) -> UInt32? {
        var crc: UInt = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var at: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, at) }
            if n < 0 { return nil }
            if n == 0 { break }
            crc = buffer.withUnsafeBufferPointer { CZlib.crc32(crc, $0.baseAddress, UInt32(n)) }
            at += off_t(n)
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}

/// libdwfl's callbacks for the modules the symbolizer reports: their files come as descriptors
/// (never opened by libdwfl), and separate debug files come from the module's `DebugInfoSearch`,
/// which `ModuleSymbols` hangs on the module's userdata. libdwfl keeps a pointer to this, so it lives
/// forever.
let dwflCallbacks: UnsafeMutablePointer<Dwfl_Callbacks> = {
    let p = UnsafeMutablePointer<Dwfl_Callbacks>.allocate(capacity: 1)
    p.initialize(
        to: Dwfl_Callbacks(
            // Every module is reported with its descriptor, so libdwfl never needs to look for its file.
            find_elf: { _, _, _, _, _, _ in -1 },
            find_debuginfo: { mod, userdata, _, _, fileName, debuglink, crc, outName in
                guard let mod, let context = userdata?.pointee else { return -1 }
                let search = Unmanaged<DebugInfoSearch>.fromOpaque(context).takeUnretainedValue()
                var bits: UnsafePointer<UInt8>? = nil
                var vaddr: GElf_Addr = 0
                let n = dwfl_module_build_id(mod, &bits, &vaddr)
                let buildID = n > 0 && bits != nil ? Array(UnsafeBufferPointer(start: bits, count: Int(n))) : []
                var bias: GElf_Addr = 0
                guard
                    let found = search.find(
                        buildID: buildID, binaryPath: fileName.map { String(cString: $0) }, debuglink: debuglink.map { String(cString: $0) },
                        crc: crc, mainElf: dwfl_module_getelf(mod, &bias))
                else { return -1 }
                outName?.pointee = strdup(found.path)
                return found.fd
            },
            section_address: dwfl_offline_section_address, debuginfo_path: nil))
    return p
}()
