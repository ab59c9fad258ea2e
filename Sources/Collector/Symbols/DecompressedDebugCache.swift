import CLibDW
import Foundation
import Glibc
import Vocabulary

/// Separate debug files whose DWARF is compressed (Debian's libc6-dbg and -dbgsym packages zlib every
/// `.debug_*` section) cost an inflate of each section libdw reads, at every symbolization: for the two
/// libc frames of a malloc benchmark, 4-5% of the whole run's CPU went to zlib. Such a file is kept
/// decompressed once, by build-id, in the user's cache (as debuginfod keeps what it downloads), and read
/// from there on later runs. Hand-written because no library keeps such a cache; the decompression
/// itself is libelf's (`elf_compress`).
///
/// The cache is this user's own: a cached file is used only when it is a regular file owned by the
/// effective user, readable by no one else, and carries the build-id asked for; anything else is
/// ignored and the original file read as it is.
struct DecompressedDebugCache {
    let directory: String

    /// `$LEAKTOOLKIT_DEBUG_CACHE`, else `$XDG_CACHE_HOME/leaktoolkit/debug`, else
    /// `$HOME/.cache/leaktoolkit/debug`; nil (no cache) when `LEAKTOOLKIT_DEBUG_CACHE` is set empty or no
    /// home is known.
    static let standard: DecompressedDebugCache? = {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["LEAKTOOLKIT_DEBUG_CACHE"] { return dir.isEmpty ? nil : DecompressedDebugCache(directory: dir) }
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return DecompressedDebugCache(directory: xdg + "/leaktoolkit/debug") }
        if let home = env["HOME"], home.hasPrefix("/") { return DecompressedDebugCache(directory: home + "/.cache/leaktoolkit/debug") }
        return nil
    }()

    /// A decompressed copy of `file`, the debug file with `buildID`, made now if the cache has none;
    /// nil when `file` has no compressed debug section or no copy can be had (read `file` itself).
    func decompressed(_ file: ModuleFile, buildID: [UInt8]) -> ModuleFile? {
        guard buildID.count > 1, Self.hasCompressedDebugSections(file.fd) else { return nil }
        let path = "\(directory)/\(DebugInfoSearch.hex(buildID)).debug"
        if let cached = Self.trusted(path, buildID: buildID) { return cached }
        guard makeDirectory(), write(decompressing: file, to: path) else { return nil }
        return Self.trusted(path, buildID: buildID)
    }

    /// The cached file at `path`, if it is this user's own, private, and the one asked for.
    private static func trusted(_ path: String, buildID: [UInt8]) -> ModuleFile? {
        guard let f = ModuleFile.open(regularFileAt: path) else { return nil }
        var st = stat()
        guard fstat(f.fd, &st) == 0, st.st_uid == geteuid(), st.st_mode & 0o077 == 0 else { return nil }
        guard DebugInfoSearch.buildID(of: f.fd) == buildID, !hasCompressedDebugSections(f.fd) else { return nil }
        return f
    }

    /// The cache directory, created private (0700) if missing; refused unless it is a directory of this
    /// user's that no one else may write to.
    private func makeDirectory() -> Bool {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var st = stat()
        return lstat(directory, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR && st.st_uid == geteuid() && st.st_mode & 0o022 == 0
    }

    /// Copies `file` to a private temporary file beside `path`, decompresses its sections in place with
    /// libelf and renames it to `path` (a reader never sees it half written).
    private func write(decompressing file: ModuleFile, to path: String) -> Bool {
        let temporary = "\(path).\(getpid()).tmp"
        let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        var done = false
        defer {
            close(fd)
            if !done { unlink(temporary) }
        }
        guard Self.copy(file.fd, to: fd) else { return false }
        _ = elf_version(UInt32(EV_CURRENT))
        guard let elf = elf_begin(fd, ELF_C_RDWR, nil) else { return false }
        var decompressed = true
        Self.forEachCompressedDebugSection(elf) { scn in
            if elf_compress(scn, 0, 0) < 0 { decompressed = false }
        }
        let written = decompressed && elf_update(elf, ELF_C_WRITE) >= 0
        elf_end(elf)
        guard written, rename(temporary, path) == 0 else { return false }
        done = true
        return true
    }

    private static func copy(_ from: Int32, to: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var at: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(from, $0.baseAddress, $0.count, at) }
            if n < 0 { return false }
            if n == 0 { return true }
            let w = buffer.withUnsafeBytes { pwrite(to, $0.baseAddress, n, at) }
            if w != n { return false }
            at += off_t(n)
        }
    }

    static func hasCompressedDebugSections(_ fd: Int32) -> Bool {
        _ = elf_version(UInt32(EV_CURRENT))
        guard let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else { return false }
        defer { elf_end(elf) }
        var any = false
        forEachCompressedDebugSection(elf) { _ in any = true }
        return any
    }

    /// Calls `body` with each `.debug_*` section flagged SHF_COMPRESSED (the ELF gABI form gcc, objcopy
    /// and dh_strip write; the older `.zdebug` form is left to libdw).
    private static func forEachCompressedDebugSection(_ elf: OpaquePointer, _ body: (OpaquePointer) -> Void) {
        ElfSections.forEach(in: elf) { s, header, name in
            if header.sh_flags & UInt64(SHF_COMPRESSED) != 0, name.hasPrefix(".debug") { body(s) }
            return true
        }
    }
}
