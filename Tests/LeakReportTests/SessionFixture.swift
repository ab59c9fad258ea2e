import Foundation
import SessionStore

/// Writes a small session with known contents, the way the collector would, for report tests.
enum SessionFixture {
    static let start: UInt64 = 1_000_000_000_000
    static let end: UInt64 = start + 60_000_000_000

    static func path(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("fixture-\(name)-\(getpid())-\(UUID().uuidString.prefix(6)).leaks").path
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
        b.stacks = [
            StackRow(id: 1, origin: .user, truncated: false, frames: [
                FrameRow(address: 0x4011a5, function: "leak_helper", offset: 0x15, module: "/tmp/app", file: "/src/app.c", line: 12),
                FrameRow(address: 0x4011d0, function: "main", offset: 0x20, module: "/tmp/app", file: "/src/app.c", line: 30),
                FrameRow(address: 0x7f00_0002_924a, function: "__libc_start_call_main", offset: 0x7a, module: "/lib/x86_64-linux-gnu/libc.so.6"),
            ]),
            StackRow(id: 2, origin: .user, truncated: true, frames: [FrameRow(address: 0x7f00_0000_1234)]),
            StackRow(id: 3, origin: .user, truncated: false, frames: [FrameRow(address: 0x401300, function: "spawn", offset: 0x8, module: "/tmp/app")]),
            StackRow(id: 4, origin: .kernel, truncated: false, frames: [FrameRow(address: 0xffff_ffff_8120_0010, function: "create_pipe_files", offset: 0x10, module: "kernel")]),
        ]
        b.liveUpserts = [
            LiveRow(kind: .heap, address: 0x10000, size: 1 << 20, stackID: 1, timeNs: start + 5_000_000_000, function: .malloc, tid: 1),
            LiveRow(kind: .heap, address: 0x20000, size: 100, stackID: 1, timeNs: end - 1_000_000_000, function: .calloc, tid: 2),
            LiveRow(kind: .heap, address: 0x30000, size: 4096, stackID: 2, timeNs: start, function: .realloc, tid: 1),
            LiveRow(kind: .mmap, address: 0x7f00_0001_0000, size: 65536, stackID: 3, timeNs: start, function: .mmap, tid: 3, backing: .anonymous),
            LiveRow(kind: .kernelSlab, address: 0xffff_8880_0000_1000, size: 192, stackID: 4, timeNs: start, function: .kmalloc, tid: 9, pid: 9, comm: "pipehog"),
        ]
        b.counters = [.lostEvents: lost]
        try w.write(b)
        try w.finish(end: .signaled(signal: 11), endRealtimeNs: 1_700_000_060_000_000_000, endMonotonicNs: end)
        return path
    }
}
