import SessionStore
import Vocabulary
import TestSupport
import XCTest

@testable import Symbols
import Tracking

final class SymbolizerTests: XCTestCase {
    /// Symbolizes return addresses in a real binary (a position-independent one, placed at an arbitrary
    /// bias, as the loader would): function, offset, file and the line of the call (ip - 1), and C++
    /// names demangled.
    func testReturnAddressesResolveToTheCallLineWithDemangledNames() throws {
        let prog = try CProgram.build(
            "symbolize",
            source: """
                #include <cstdlib>
                namespace app { struct Cache { static void* grow(int n); }; }
                extern "C" void* target(void) { return std::malloc(16); }
                void* app::Cache::grow(int n) {
                    void* p = target(); // CALL-TARGET
                    return n ? p : nullptr;
                }
                int main() { return app::Cache::grow(1) != nullptr ? 0 : 1; }
                """, language: "c++", extraFlags: ["-fPIE", "-pie"])
        // Find the return address after the call to target() inside app::Cache::grow from the disassembly.
        let dis = try Run.capture(["/usr/bin/objdump", "-d", "--no-show-raw-insn", "-C", prog.path])
        let lines = dis.stdout.split(separator: "\n").map(String.init)
        guard let callIndex = lines.firstIndex(where: { $0.contains("call") && $0.contains("<target>") }) else {
            return XCTFail("no call to target in:\n\(dis.stdout)")
        }
        let next = lines[callIndex + 1].trimmingCharacters(in: .whitespaces)
        let retOffset = try XCTUnwrap(UInt64(next.prefix { $0 != ":" }, radix: 16))
        let bias: UInt64 = 0x5555_5555_0000
        let module = SessionModule(
            sessionID: 1, space: 1,
            info: ModuleInfo(id: 1, path: prog.path, buildID: [], bias: bias, lo: bias, hi: bias + 0x10000, file: ModuleFile.open(regularFileAt: prog.path)),
            loadedNs: 0)
        let symbolizer = Symbolizer()
        symbolizer.register([module])
        let (locations, stacks) = symbolizer.symbolize([
            NewStack(id: 5, space: 1, origin: .user, frames: [RawFrame(address: bias + retOffset, moduleID: 1)])
        ])
        XCTAssertEqual(stacks.first?.locations, [1])
        let loc = try XCTUnwrap(locations.first)
        let f = try XCTUnwrap(loc.lines.last)
        XCTAssertEqual(f.function, "app::Cache::grow(int)")
        XCTAssertEqual(loc.moduleID, 1)
        XCTAssertEqual(f.file, prog.sourcePath)
        XCTAssertEqual(f.line, try prog.line(of: "CALL-TARGET"))
        // The offset is from the function's start to the return address.
        let nm = try Run.capture(["/usr/bin/nm", prog.path])
        let start = try XCTUnwrap(
            nm.stdout.split(separator: "\n").first { $0.hasSuffix(" _ZN3app5Cache4growEi") }.flatMap { UInt64($0.prefix(16), radix: 16) })
        XCTAssertEqual(loc.offset, retOffset - start)
    }

    func testAReplacedFileIsNotTrustedForSymbols() throws {
        let prog = try CProgram.build("replaced", source: "int main(void) { return 0; }\n")
        let module = SessionModule(
            sessionID: 1, space: 1,
            info: ModuleInfo(id: 1, path: prog.path, buildID: [1, 2, 3, 4], bias: 0, lo: 0, hi: 0x10000, file: ModuleFile.open(regularFileAt: prog.path)),
            loadedNs: 0)
        let symbolizer = Symbolizer()
        symbolizer.register([module])
        let (locations, _) = symbolizer.symbolize([NewStack(id: 1, space: 1, origin: .user, frames: [RawFrame(address: 0x1139, moduleID: 1)])])
        XCTAssertEqual(locations, [LocationRecord(id: 1, address: 0x1139, moduleID: 1, lines: [])])
    }

    func testAModuleWithoutAnOpenedFileIsNeverOpenedByPath() throws {
        // A hostile process can claim any path; a FIFO would block an open() forever.
        let dir = Scratch.directory.appendingPathComponent("fifo-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("libevil.so").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertNil(ModuleFile.open(regularFileAt: fifo))
        let module = SessionModule(
            sessionID: 1, space: 1, info: ModuleInfo(id: 1, path: fifo, buildID: [], bias: 0, lo: 0, hi: 0x10000), loadedNs: 0)
        let symbolizer = Symbolizer()
        symbolizer.register([module])
        let (locations, _) = symbolizer.symbolize([NewStack(id: 1, space: 1, origin: .user, frames: [RawFrame(address: 0x1139, moduleID: 1)])])
        XCTAssertEqual(locations.first?.lines, [])
    }

    func testKernelAddressesResolveThroughKallsyms() throws {
        let text = """
            ffffffff81000000 T _stext
            ffffffff81200000 t create_pipe_files
            ffffffff81200400 T do_pipe2
            ffffffffc0001000 t leak_timer_callback\t[memory_leak]
            ffffffff81300000 D some_data

            """
        let path = Scratch.directory.appendingPathComponent("kallsyms-\(getpid())").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let k = try XCTUnwrap(KernelSymbols.load(path: path))
        XCTAssertEqual(k.resolve(0xffff_ffff_8120_0123), FrameRow(address: 0xffff_ffff_8120_0123, function: "create_pipe_files", offset: 0x123, module: "kernel"))
        XCTAssertEqual(k.resolve(0xffff_ffff_c000_1014).function, "leak_timer_callback")
        XCTAssertEqual(k.resolve(0xffff_ffff_c000_1014).module, "memory_leak")
        XCTAssertEqual(k.resolve(0xffff_ffff_c000_1014).offset, 0x14)
    }
}

/// Separate debug files the way Debian's -dbgsym packages install them: by build-id under a debug root.
final class BuildIDDebugFileTests: XCTestCase {
    func testADebugFileFoundOnlyByBuildIDNamesAStrippedBinary() throws {
        let prog = try CProgram.build(
            "buildid",
            source: """
                #include <stdlib.h>
                __attribute__((noinline)) static void *hidden_alloc(int n) {
                    return malloc(n); // HIDDEN
                }
                int main(void) { return hidden_alloc(8) != 0 ? 0 : 1; }
                """, extraFlags: ["-fPIE", "-pie"])
        let dis = try Run.capture(["/usr/bin/objdump", "-d", "--no-show-raw-insn", prog.path]).stdout.split(separator: "\n").map(String.init)
        let start = try XCTUnwrap(dis.firstIndex { $0.hasSuffix("<hidden_alloc>:") })
        let call = try XCTUnwrap(dis[start...].firstIndex { $0.contains("call") && $0.contains("<malloc@plt>") })
        let ret = try XCTUnwrap(UInt64(dis[call + 1].trimmingCharacters(in: .whitespaces).prefix { $0 != ":" }, radix: 16))
        let note = try Run.capture(["/usr/bin/readelf", "-n", prog.path]).stdout
        let hex = try XCTUnwrap(note.split(separator: "\n").first { $0.contains("Build ID:") }?.split(separator: " ").last.map(String.init))
        // The debug tree: ROOT/.build-id/xx/rest.debug; the binary keeps neither symbols nor a debuglink.
        let root = prog.directory.appendingPathComponent("debug-root").path
        try FileManager.default.createDirectory(atPath: "\(root)/.build-id/\(hex.prefix(2))", withIntermediateDirectories: true)
        _ = try Run.capture(["/usr/bin/objcopy", "--only-keep-debug", prog.path, "\(root)/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug"])
        _ = try Run.capture(["/usr/bin/strip", "--strip-all", prog.path])
        XCTAssertFalse(try Run.capture(["/usr/bin/readelf", "-S", prog.path]).stdout.contains(".gnu_debuglink"))
        let buildID = stride(from: 0, to: hex.count, by: 2).compactMap { i -> UInt8? in
            let a = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[a..<hex.index(a, offsetBy: 2)], radix: 16)
        }
        let bias: UInt64 = 0x5555_0000_0000
        let module = SessionModule(
            sessionID: 1, space: 1,
            info: ModuleInfo(
                id: 1, path: prog.path, buildID: buildID, bias: bias, lo: bias, hi: bias + 0x10000, file: ModuleFile.open(regularFileAt: prog.path)),
            loadedNs: 0)
        for (roots, named) in [([root], true), ([prog.directory.appendingPathComponent("elsewhere").path], false)] {
            let symbolizer = Symbolizer(debugRoots: roots)
            symbolizer.register([module])
            let (locations, _) = symbolizer.symbolize([NewStack(id: 1, space: 1, origin: .user, frames: [RawFrame(address: bias + ret, moduleID: 1)])])
            let loc = try XCTUnwrap(locations.first)
            XCTAssertEqual(loc.fileOffset, ret, "text's file offset equals its address in this layout")
            if named {
                XCTAssertEqual(loc.lines, [SymbolLine(function: "hidden_alloc", file: prog.sourcePath, line: try prog.line(of: "HIDDEN"))])
            } else {
                XCTAssertEqual(loc.lines, [], "without the debug root nothing names it")
            }
        }
    }
}
