import Foundation
import TestSupport
import SessionStore
import Vocabulary

/// Writes a small session with known contents, the way the collector would, for report tests.
enum SessionFixture {
    static let start: UInt64 = 1_000_000_000_000
    static let end: UInt64 = start + 60_000_000_000

    static func path(_ name: String) -> String {
        Scratch.directory.appendingPathComponent("fixture-\(name)-\(getpid())-\(UUID().uuidString.prefix(6)).leaks").path
    }

    /// Stack 1: two heap blocks (1 MiB, old; 100 B, young). Stack 2: one 4 KiB block. Stack 3: an
    /// anonymous 64 KiB mapping. Stack 4: a kernel-slab object.
    static func write(to path: String, lost: UInt64 = 0) throws -> String {
        var info = SessionInfo(
            mode: .launch, command: ["./app", "--leak"], pid: 4242, startRealtimeNs: 1_700_000_000_000_000_000, startMonotonicNs: start,
            intervalMs: 1000)
        info.end = nil
        let w = try SessionWriter(creating: path, info: info)
        var b = SessionBatch()
        b.timeNs = start + 1
        b.spaces = [SpaceRow(id: 1, info: SpaceInfo(kind: .user, pid: 4242, command: info.command, startNs: start))]
        b.modules = [ModuleRow(id: 1, space: 1, path: "/tmp/app", buildID: "ab12", bias: 0, lo: 0x400000, hi: 0x402000, loadedNs: start)]
        b.locations = [
            LocationRecord(id: 1, address: 0x4011a5, moduleID: 1, offset: 0x15, lines: [SymbolLine(function: "leak_helper", file: "/src/app.c", line: 12)]),
            LocationRecord(id: 2, address: 0x4011d0, moduleID: 1, offset: 0x20, lines: [SymbolLine(function: "main", file: "/src/app.c", line: 30)]),
            LocationRecord(
                id: 3, address: 0x7f00_0002_924a, moduleName: "/lib/x86_64-linux-gnu/libc.so.6", offset: 0x7a,
                lines: [SymbolLine(function: "__libc_start_call_main")]),
            LocationRecord(id: 4, address: 0x7f00_0000_1234, lines: []),
            LocationRecord(id: 5, address: 0x401300, moduleID: 1, offset: 0x8, lines: [SymbolLine(function: "spawn")]),
            LocationRecord(
                id: 6, address: 0xffff_ffff_8120_0010, moduleName: "kernel", offset: 0x10, lines: [SymbolLine(function: "create_pipe_files")]),
        ]
        b.stacks = [
            StackRecord(id: 1, space: 1, origin: .user, truncated: false, locations: [1, 2, 3]),
            StackRecord(id: 2, space: 1, origin: .user, truncated: true, locations: [4]),
            StackRecord(id: 3, space: 1, origin: .user, truncated: false, locations: [5]),
            StackRecord(id: 4, space: 1, origin: .kernel, truncated: false, taskPid: 9, taskComm: "pipehog", locations: [6]),
        ]
        let blocks: [(BlockKind, LiveBlock)] = [
            (.heap, LiveBlock(address: 0x10000, size: 1 << 20, stackID: 1, timeNs: start + 5_000_000_000, function: .malloc)),
            (.heap, LiveBlock(address: 0x20000, size: 100, stackID: 1, timeNs: end - 1_000_000_000, function: .calloc)),
            (.heap, LiveBlock(address: 0x30000, size: 4096, stackID: 2, timeNs: start, function: .realloc)),
            (.mmap, LiveBlock(address: 0x7f00_0001_0000, size: 65536, stackID: 3, timeNs: start, function: .mmap, backing: .anonymous)),
            (.kernelSlab, LiveBlock(address: 0xffff_8880_0000_1000, size: 192, stackID: 4, timeNs: start, function: .kmalloc)),
        ]
        for (kind, block) in blocks {
            b.live[LiveTableKey(space: 1, kind: kind), default: LiveChanges()].puts.append(block)
            if let i = b.totals.firstIndex(where: { $0.stackID == block.stackID && $0.kind == kind }) {
                b.totals[i].bytes += block.size
                b.totals[i].blocks += 1
            } else {
                b.totals.append(
                    TotalRow(stackID: block.stackID, kind: kind, bytes: block.size, blocks: 1, totalBytes: block.size, totalBlocks: 1))
            }
        }
        b.counters = [.lostEvents: lost]
        try w.write(b)
        try w.finish(end: .signaled(signal: 11), endRealtimeNs: 1_700_000_060_000_000_000, endMonotonicNs: end)
        return path
    }
}
