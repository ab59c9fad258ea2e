import Foundation
import SessionStore
import Symbols
import TestSupport
import Tracking
import Vocabulary
import XCTest

@testable import CollectionRunner

/// Stacks are symbolized while the program runs, on the symbolizer's own thread, and each batch gets
/// exactly the stacks cut for it; JIT frames wait for their batch, since a JIT may write its perf map late.
final class BackgroundSymbolsTests: XCTestCase {
    /// A binary with two functions, and the runtime address just inside each, at `bias`.
    private struct Binary {
        let module: ModuleInfo
        let a: UInt64
        let b: UInt64
    }

    private static let bias: UInt64 = 0x5555_0000_0000

    private func binary() throws -> Binary {
        let prog = try CProgram.build(
            "bgsymbols",
            source: """
                #include <stdlib.h>
                __attribute__((noinline)) void *leak_a(void) { return malloc(8); }
                __attribute__((noinline)) void *leak_b(void) { return malloc(16); }
                int main(void) { return leak_a() && leak_b() ? 0 : 1; }
                """, extraFlags: ["-fPIE", "-pie"])
        let nm = try Run.capture(["/usr/bin/nm", prog.path])
        func start(_ name: String) throws -> UInt64 {
            try XCTUnwrap(nm.stdout.split(separator: "\n").first { $0.hasSuffix(" T \(name)") }.flatMap { UInt64($0.prefix(16), radix: 16) })
        }
        let module = ModuleInfo(
            id: 1, path: prog.path, buildID: [], bias: Self.bias, lo: Self.bias, hi: Self.bias + 0x10000,
            file: ModuleFile.open(regularFileAt: prog.path))
        // A return address two bytes in: its call instruction (address - 1) is inside the function.
        return Binary(module: module, a: Self.bias + (try start("leak_a")) + 2, b: Self.bias + (try start("leak_b")) + 2)
    }

    private func stack(_ id: SessionStackID, _ address: UInt64, module: Int64, pid: Int32? = nil) -> NewStack {
        NewStack(id: id, space: 1, origin: .user, pid: pid, frames: [RawFrame(address: address, moduleID: module)])
    }

    func testEachBatchTakesWhatWasSymbolizedForItAndJITStacksWaitForTheirBatch() throws {
        let bin = try binary()
        let module = SessionModule(sessionID: 1, space: 1, info: bin.module, loadedNs: 0)
        let stage = SymbolizingStage(Symbolizer())
        stage.early(modules: [module], stacks: [stack(1, bin.a, module: 1), stack(2, 0x1234_5678, module: 0)], batch: 1)
        // Arrived after batch 1 was cut: batch 2's.
        stage.early(modules: [], stacks: [stack(3, bin.b, module: 1)], batch: 2)
        let first = stage.take(through: 1)
        XCTAssertEqual(first.stacks.map(\.id), [1], "the stack outside every module waits for its batch")
        XCTAssertEqual(first.locations.map { $0.lines.last?.function }, ["leak_a"])
        stage.finish(modules: [], stacks: [stack(4, bin.a, module: 1)], batch: 2)
        let second = stage.take(through: 2)
        XCTAssertEqual(second.stacks.map(\.id), [3, 2, 4])
        // Stack 4 reuses stack 1's location; 3 and 2 bring their own.
        XCTAssertEqual(second.stacks.map(\.locations), [[2], [3], [1]])
        XCTAssertEqual(second.locations.map(\.id), [2, 3])
        XCTAssertEqual(second.locations.first?.lines.last?.function, "leak_b")
        XCTAssertEqual(stage.take(through: 3).stacks.count, 0)
    }

    /// A collection driven by a scripted source, shorter than an interval (as `java -version` is):
    /// stacks arrive while it runs and are symbolized then, one of them in JIT code whose perf map is
    /// written only at the end (as the JVM's -XX:+DumpPerfMapAtExit does). Every stack is stored once
    /// with its names.
    func testACollectionStoresEveryStackOnceWithItsNamesWhateverTheirTiming() throws {
        let bin = try binary()
        let jit: UInt64 = 0x7f00_dead_0000
        let map = "/tmp/perf-\(getpid()).map"
        unlink(map)
        defer { unlink(map) }
        func alloc(_ address: UInt64, _ size: UInt64, _ stack: UInt64) -> Event {
            .alloc(Allocation(address: address, size: size, kind: .heap, function: .malloc, stack: .local(stack), time: monotonicNow()))
        }
        let source = ScriptedSource(steps: [
            (0, { [.module(bin.module), .stack(StackDefinition(id: 1, frames: [bin.a])), .stack(StackDefinition(id: 3, frames: [jit + 4])),
                   alloc(0x1000, 8, 1), alloc(0x2000, 24, 3)] }),
            (150_000_000, { [.stack(StackDefinition(id: 2, frames: [bin.b])), alloc(0x3000, 16, 2)] }),
            (150_000_000, {
                try? "\(String(jit, radix: 16)) 40 jit_leaker\n".write(toFile: map, atomically: true, encoding: .utf8)
                return [alloc(0x4000, 8, 1)]
            }),
        ])
        let path = Scratch.directory.appendingPathComponent("bgsymbols-\(getpid()).leaks").path
        try? FileManager.default.removeItem(atPath: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let info = SessionInfo(mode: .launch, command: ["app"], pid: getpid(), startRealtimeNs: 0, startMonotonicNs: monotonicNow(), intervalMs: 10_000)
        let result = try CollectionRunner(source: source, sessionPath: path, info: info, options: RunnerOptions(intervalNs: 10_000_000_000)).run()
        XCTAssertNil(result.failure)
        XCTAssertEqual(result.end, .exited(status: 0))
        let reader = try SessionReader(path: path)
        let totals = try reader.totals().filter { $0.blocks > 0 }
        let stacks = try reader.stacks(Set(totals.map(\.stackID)))
        var byName: [String: [UInt64]] = [:]
        for t in totals { byName[stacks[t.stackID]?.frames.first?.function ?? "?", default: []] += [t.bytes, t.blocks] }
        XCTAssertEqual(byName, ["leak_a": [16, 2], "leak_b": [16, 1], "jit_leaker": [24, 1]])
        XCTAssertEqual(stacks.values.first { $0.frames.first?.function == "jit_leaker" }?.frames.first?.module, FrameRow.jitModule)
    }
}
