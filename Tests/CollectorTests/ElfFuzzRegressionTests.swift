import Foundation
import TestSupport
import SessionStore
import Symbols
import Tracking
import Vocabulary
import XCTest

/// Every module file the ELF fuzzer found a problem with (tools/fuzz/regressions/elf/), symbolized the
/// way the fuzz target does it (tools/fuzz/Harness/ElfTarget.swift): opened as the collector opens
/// modules and asked for a stack of addresses across its first pages. Each must give one stack with a
/// location per address, never a trap.
final class ElfFuzzRegressionTests: XCTestCase {
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/fuzz/regressions/elf")
    static let bias: UInt64 = 0x7f00_0000_0000
    static let probes: [UInt64] = Array(stride(from: 0x1000, to: 0x1400, by: 8)) + [0, 1, 0x400, 0x2000, 0x10_0000, UInt64.max - bias]

    func testEveryElfRegressionSymbolizesWithoutATrap() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.regressions.path).sorted()
        XCTAssertFalse(names.isEmpty, "no inputs in \(Self.regressions.path)")
        let dir = Scratch.directory.appendingPathComponent("elf-regressions-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in names {
            let path = dir.appendingPathComponent("module.so").path
            try Data(contentsOf: Self.regressions.appendingPathComponent(name)).write(to: URL(fileURLWithPath: path))
            let file = try XCTUnwrap(ModuleFile.open(regularFileAt: path), name)
            let info = ModuleInfo(id: 1, path: path, buildID: [], bias: Self.bias, lo: Self.bias, hi: Self.bias + 0x10_0000, file: file)
            let symbolizer = Symbolizer(kernelSymbols: nil, debugRoots: [dir.path])
            symbolizer.register([SessionModule(sessionID: 1, space: 1, info: info, loadedNs: 0)])
            let frames = Self.probes.map { RawFrame(address: Self.bias &+ $0, moduleID: 1) }
            let out = symbolizer.symbolize([NewStack(id: 1, space: 1, origin: .user, pid: nil, frames: frames)])
            XCTAssertEqual(out.stacks.count, 1, name)
            XCTAssertEqual(out.stacks.first?.locations.count, Self.probes.count, "\(name): one location per address")
            // These files' load segments put a file offset past 2^64: such an address has none to show.
            let last = try XCTUnwrap(out.locations.first { $0.address == UInt64.max }, name)
            XCTAssertNil(last.fileOffset, name)
        }
    }
}
