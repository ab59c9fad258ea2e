import Foundation
import LeakReport
import TestSupport
import XCTest

/// Debug info outside the binary, or none at all, the way distributions ship programs: a separate
/// debug file found through `.gnu_debuglink`, MiniDebugInfo, compressed debug sections, a fully
/// stripped binary, and a hostile debuglink that names a FIFO.
final class DebugInfoTests: XCTestCase {
    static let source = """
        #include <stdlib.h>
        void *keep[64];
        __attribute__((noinline)) void *exported_alloc(int n) {
            return malloc(n); // EXPORTED
        }
        __attribute__((noinline)) static void *hidden_alloc(int n) {
            return malloc(n); // HIDDEN
        }
        int main(void) {
            for (int i = 0; i < 3; i++) keep[i] = exported_alloc(24); // CALL-EXPORTED
            for (int i = 0; i < 5; i++) keep[10 + i] = hidden_alloc(40); // CALL-HIDDEN
            return 0;
        }
        """

    /// The program, built with -rdynamic so `exported_alloc` is in `.dynsym` and `hidden_alloc` only in
    /// `.symtab`, and an untouched copy of it to check offsets against.
    private func build(_ name: String, flags: [String] = []) throws -> (prog: CProgram, original: String) {
        let prog = try CProgram.build(name, source: Self.source, extraFlags: ["-rdynamic"] + flags)
        let original = prog.path + ".orig"
        try FileManager.default.copyItem(atPath: prog.path, toPath: original)
        return (prog, original)
    }

    private func frames(_ report: TopJSON, bytes: UInt64, module: String) throws -> [TopJSON.Frame] {
        let s = try XCTUnwrap(report.stacks.first { $0.bytes == bytes }, "no stack of \(bytes) bytes: \(report.stacks.map(\.bytes))")
        // The program's own frames up to main (below it is the C runtime's _start).
        let mine = s.frames.filter { $0.module == module }
        return Array(mine.prefix(through: mine.firstIndex { $0.function == "main" } ?? mine.count - 1))
    }

    private func assertNamedWithLines(_ prog: CProgram, _ report: TopJSON, file: StaticString = #filePath, line: UInt = #line) throws {
        let exported = try frames(report, bytes: 3 * 24, module: prog.path)
        XCTAssertEqual(exported.map { $0.function ?? "?" }, ["exported_alloc", "main"], file: file, line: line)
        XCTAssertEqual(exported.map { $0.line ?? 0 }, try ["EXPORTED", "CALL-EXPORTED"].map(prog.line(of:)), file: file, line: line)
        XCTAssertEqual(exported.map { $0.file ?? "?" }, [prog.sourcePath, prog.sourcePath], file: file, line: line)
        let hidden = try frames(report, bytes: 5 * 40, module: prog.path)
        XCTAssertEqual(hidden.map { $0.function ?? "?" }, ["hidden_alloc", "main"], file: file, line: line)
        XCTAssertEqual(hidden.map { $0.line ?? 0 }, try ["HIDDEN", "CALL-HIDDEN"].map(prog.line(of:)), file: file, line: line)
    }

    func testSeparateDebugFileFoundThroughDebuglink() throws {
        let (prog, _) = try build("debuglink")
        let debug = prog.path + ".debug"
        try Toolchains.run(["/usr/bin/objcopy", "--only-keep-debug", prog.path, debug])
        try Toolchains.run(["/usr/bin/strip", "--strip-all", prog.path])
        try Toolchains.run(["/usr/bin/objcopy", "--add-gnu-debuglink=\(debug)", prog.path])
        XCTAssertFalse(try Run.capture(["/usr/bin/readelf", "-S", prog.path]).stdout.contains(".symtab"), "the binary is stripped")
        let c = try Pipeline.collect(prog)
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        try assertNamedWithLines(prog, try Pipeline.top(c.session))
    }

    func testCompressedDebugSections() throws {
        let (prog, _) = try build("zdebug", flags: ["-gz=zlib"])
        let sections = try Run.capture(["/usr/bin/readelf", "-SW", prog.path]).stdout
        let info = try XCTUnwrap(sections.split(separator: "\n").first { $0.contains(" .debug_info ") })
        XCTAssertTrue(info.contains(" C "), "debug_info is compressed: \(info)")
        let c = try Pipeline.collect(prog)
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        try assertNamedWithLines(prog, try Pipeline.top(c.session))
    }

    /// A separate debug file with zlib-compressed DWARF, as Debian's -dbg and -dbgsym packages ship them:
    /// read decompressed from the user's cache, made on the first run (private, named by build-id) and
    /// read on the next; a cached file that is not private, or carries another build-id, is never used.
    func testCompressedSeparateDebugFileIsReadDecompressedFromTheCache() throws {
        let (prog, original) = try build("zdebuglink")
        let debug = prog.path + ".debug"
        try Toolchains.run(["/usr/bin/objcopy", "--only-keep-debug", "--compress-debug-sections=zlib", prog.path, debug])
        try Toolchains.run(["/usr/bin/strip", "--strip-all", prog.path])
        try Toolchains.run(["/usr/bin/objcopy", "--add-gnu-debuglink=\(debug)", prog.path])
        func debugInfoCompressed(_ path: String) throws -> Bool {
            let sections = try Run.capture(["/usr/bin/readelf", "-SW", path]).stdout
            let info = try XCTUnwrap(sections.split(separator: "\n").first { $0.contains(" .debug_info ") }, "no .debug_info in \(path)")
            return info.contains(" C ")
        }
        XCTAssertTrue(try debugInfoCompressed(debug))
        let buildID = try XCTUnwrap(
            try Run.capture(["/usr/bin/readelf", "-n", original]).stdout.split(separator: "\n").first { $0.contains("Build ID:") }
                .map { String($0.split(separator: " ").last ?? "") })
        let cache = URL(fileURLWithPath: prog.path).deletingLastPathComponent().appendingPathComponent("cache/debug").path
        let cached = "\(cache)/\(buildID).debug"
        var env = ProcessInfo.processInfo.environment
        env["LEAKTOOLKIT_DEBUG_CACHE"] = cache
        func collectNamed(_ what: String) throws {
            let c = try Pipeline.collect(prog, environment: env)
            XCTAssertEqual(c.result.status, 0, c.result.stderr)
            try assertNamedWithLines(prog, try Pipeline.top(c.session))
            let st = try FileManager.default.attributesOfItem(atPath: cached)
            XCTAssertEqual((st[.posixPermissions] as? NSNumber)?.intValue, 0o600, "\(what): the cached copy is private")
            XCTAssertFalse(try debugInfoCompressed(cached), "\(what): the cached copy is decompressed")
        }
        try collectNamed("first run")
        let made = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: cached)[.modificationDate] as? Date)
        try collectNamed("second run")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: cached)[.modificationDate] as? Date, made, "read, not made again")

        // Another program's debug file under this build-id's name: its lines would be wrong. Refused, and replaced.
        let other = try CProgram.build("zdebug-other", source: "#include <stdlib.h>\n\nint main(void) { return malloc(1) == 0; }\n")
        try FileManager.default.removeItem(atPath: cached)
        try Toolchains.run(["/usr/bin/objcopy", "--only-keep-debug", other.path, cached])
        chmod(cached, 0o600)
        try collectNamed("a cached file with another build-id")
        // A copy others may read (or have written) is not trusted either.
        chmod(cached, 0o644)
        try collectNamed("a cached file readable by others")
    }

    /// Fedora's and Debian's MiniDebugInfo: the symbols `.dynsym` lacks, xz-compressed in `.gnu_debugdata`.
    func testMiniDebugInfoNamesFunctionsOfAStrippedBinary() throws {
        let (prog, original) = try build("minidebug")
        let dir = prog.directory.path
        let dynamic = try Run.capture(["/usr/bin/nm", "-D", "--format=posix", "--defined-only", original]).stdout
        let all = try Run.capture(["/usr/bin/nm", "--format=posix", "--defined-only", original]).stdout
        let exported = Set(dynamic.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
        let functions = all.split(separator: "\n").compactMap { l -> String? in
            let f = l.split(separator: " ")
            return f.count >= 2 && (f[1] == "T" || f[1] == "t") && !exported.contains(String(f[0])) ? String(f[0]) : nil
        }
        XCTAssertTrue(functions.contains("hidden_alloc"))
        try functions.joined(separator: "\n").appending("\n").write(toFile: "\(dir)/keep", atomically: true, encoding: .utf8)
        try Toolchains.run(["/usr/bin/objcopy", "--only-keep-debug", original, "\(dir)/mini"])
        try Toolchains.run(["/usr/bin/objcopy", "-S", "--remove-section", ".comment", "--keep-symbols=\(dir)/keep", "\(dir)/mini", "\(dir)/mini.debug"])
        try Toolchains.run(["/usr/bin/xz", "-f", "\(dir)/mini.debug"])
        try Toolchains.run(["/usr/bin/strip", "--strip-all", prog.path])
        try Toolchains.run(["/usr/bin/objcopy", "--add-section", ".gnu_debugdata=\(dir)/mini.debug.xz", prog.path])
        let c = try Pipeline.collect(prog)
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        let report = try Pipeline.top(c.session)
        XCTAssertEqual(try frames(report, bytes: 5 * 40, module: prog.path).map { $0.function ?? "?" }, ["hidden_alloc", "main"])
        XCTAssertEqual(try frames(report, bytes: 3 * 24, module: prog.path).map { $0.function ?? "?" }, ["exported_alloc", "main"])
    }

    /// `strip --strip-all`: `.dynsym` still names the exported function; the others show module and file
    /// offset, and that offset symbolizes on the unstripped copy with plain addr2line.
    func testFullyStrippedBinaryKeepsDynsymNamesAndFileOffsets() throws {
        let (prog, original) = try build("stripped")
        try Toolchains.run(["/usr/bin/strip", "--strip-all", prog.path])
        let c = try Pipeline.collect(prog)
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        let report = try Pipeline.top(c.session)
        let exported = try frames(report, bytes: 3 * 24, module: prog.path)
        XCTAssertEqual(exported.first?.function, "exported_alloc")
        XCTAssertNil(exported.first?.file)
        // main is exported (-rdynamic), hidden_alloc is not.
        let hidden = try frames(report, bytes: 5 * 40, module: prog.path)
        XCTAssertEqual(hidden.map(\.function), [nil, "main"])
        let buildID = try Run.capture(["/usr/bin/readelf", "-n", original]).stdout.split(separator: "\n")
            .first { $0.contains("Build ID:") }.map { String($0.split(separator: " ").last ?? "") }
        for (i, f) in hidden.enumerated() {
            XCTAssertEqual(f.buildID, buildID)
            let offset = try XCTUnwrap(f.fileOffset)
            // File offset back to the ELF address, and that (minus one: the call) through addr2line.
            let vaddr = try Self.address(ofFileOffset: offset - 1, in: original)
            let where_ = try Run.capture(["/usr/bin/addr2line", "-f", "-e", original, String(vaddr, radix: 16)]).stdout.split(separator: "\n")
            XCTAssertEqual(where_.first.map(String.init), i == 0 ? "hidden_alloc" : "main")
            XCTAssertEqual(
                where_.last.map { String($0.split(separator: " ").first ?? "") }, "\(prog.sourcePath):\(try prog.line(of: i == 0 ? "HIDDEN" : "CALL-HIDDEN"))")
        }
        let text = try Pipeline.text(c.session)
        XCTAssertTrue(text.contains(" [stripped+0x\(String(try XCTUnwrap(hidden[0].fileOffset), radix: 16))]\n"), text)
        XCTAssertFalse(text.contains("[unknown] [stripped]"), text)
    }

    /// A debuglink is the traced program's to choose: one naming a FIFO must not hang the collector.
    func testADebuglinkToAFIFOIsNotOpened() throws {
        let (prog, _) = try build("fifolink")
        let evil = prog.directory.appendingPathComponent("evil.debug").path
        try Toolchains.run(["/usr/bin/objcopy", "--only-keep-debug", prog.path, evil])
        try Toolchains.run(["/usr/bin/strip", "--strip-debug", prog.path])
        try Toolchains.run(["/usr/bin/objcopy", "--add-gnu-debuglink=\(evil)", prog.path])
        try FileManager.default.removeItem(atPath: evil)
        XCTAssertEqual(mkfifo(evil, 0o600), 0)
        let c = try Pipeline.collect(prog)
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        let hidden = try frames(try Pipeline.top(c.session), bytes: 5 * 40, module: prog.path)
        // Named from the binary's own .symtab; the debug file was never read.
        XCTAssertEqual(hidden.map { $0.function ?? "?" }, ["hidden_alloc", "main"])
        XCTAssertEqual(hidden.map(\.file), [nil, nil])
    }

    /// Debian's -dbgsym packages run dwz: DWARF that several binaries share moves into one alternate
    /// file that each names in `.gnu_debugaltlink` (a path and its build-id). An inline function from a
    /// shared header is described only there, so its frame is named only if the alternate is found.
    func testDWARFSharedThroughADwzAlternateFile() throws {
        guard let dwz = Toolchains.find("dwz") else { throw XCTSkip("dwz is not installed (tools/setup.sh installs it)") }
        let header = """
            #include <stdlib.h>
            struct shared_record { long id; char name[40]; struct shared_record *next; };
            static inline __attribute__((always_inline)) void *shared_helper(int n) {
                return malloc(n * sizeof(struct shared_record)); // SHARED-HELPER
            }
            """
        let first = try CProgram.build(
            "dwzfirst",
            source: header + """

                void *keep[8];
                int main(void) {
                    for (int i = 0; i < 3; i++) keep[i] = shared_helper(2); // CALL-SHARED
                    return 0;
                }
                """)
        let second = try CProgram.build(
            "dwzsecond", source: header + "\nint main(void) { return shared_helper(1) != 0 ? 0 : 1; }\n")
        let common = first.directory.appendingPathComponent("common.debug").path
        try Toolchains.run([dwz, "-m", common, "-M", common, first.path, second.path])
        XCTAssertTrue(try Run.capture(["/usr/bin/readelf", "-S", first.path]).stdout.contains(".gnu_debugaltlink"), "dwz made an altlink")
        let c = try Pipeline.collect(first)
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        let s = try XCTUnwrap(try Pipeline.top(c.session).stacks.first { $0.bytes == 3 * 2 * 56 })
        let mine = s.frames.filter { $0.module == first.path }
        XCTAssertEqual(mine.first.map { [$0.function ?? "?", "\($0.inlined)"] }, ["shared_helper", "true"])
        XCTAssertEqual(mine.first?.line, try first.line(of: "SHARED-HELPER"))
        XCTAssertEqual(mine.dropFirst().first?.function, "main")
        XCTAssertEqual(mine.dropFirst().first?.line, try first.line(of: "CALL-SHARED"))
    }

    /// A program that deletes its own binary and its library before it leaks: both still symbolize, from
    /// the files the collector opened through /proc/PID/map_files while the process lived.
    func testABinaryAndALibraryDeletedFromDiskStillSymbolize() throws {
        let lib = try CProgram.build(
            "gonelib",
            source: """
                #include <stdlib.h>
                void *lib_leak(int n) {
                    return malloc(n); // LIB-LEAK
                }
                """, sharedObject: true)
        let prog = try CProgram.build(
            "gone",
            source: """
                #include <dlfcn.h>
                #include <unistd.h>
                int main(int argc, char **argv) {
                    void *h = dlopen(argv[1], RTLD_NOW);
                    if (!h) return 1;
                    void *(*leak)(int) = (void *(*)(int))dlsym(h, "lib_leak");
                    unlink(argv[0]);
                    unlink(argv[1]);
                    sleep(2); /* a collector batch goes by with both files gone */
                    for (int i = 0; i < 6; i++) leak(56); // CALL-LIB
                    return 0;
                }
                """, extraFlags: ["-ldl"])
        let c = try Pipeline.collect(prog, [lib.path])
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: prog.path))
        let s = try XCTUnwrap(try Pipeline.top(c.session).stacks.first { $0.bytes == 6 * 56 })
        let named = s.frames.filter { $0.file != nil }.map { "\($0.function ?? "?") \($0.file ?? "?"):\($0.line ?? 0)" }
        XCTAssertEqual(
            Array(named.prefix(2)),
            ["lib_leak \(lib.sourcePath):\(try lib.line(of: "LIB-LEAK"))", "main \(prog.sourcePath):\(try prog.line(of: "CALL-LIB"))"])
    }

    /// The ELF address of a file offset, through the program headers readelf prints.
    static func address(ofFileOffset offset: UInt64, in path: String) throws -> UInt64 {
        let out = try Run.capture(["/usr/bin/readelf", "-lW", path]).stdout
        for line in out.split(separator: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("LOAD") {
            let f = line.split(separator: " ")
            guard f.count >= 6, let off = UInt64(f[1].dropFirst(2), radix: 16), let vaddr = UInt64(f[2].dropFirst(2), radix: 16),
                let size = UInt64(f[4].dropFirst(2), radix: 16)
            else { continue }
            if offset >= off && offset < off + size { return offset - off + vaddr }
        }
        throw TestSupportError("file offset \(offset) is in no LOAD segment of \(path)")
    }
}
