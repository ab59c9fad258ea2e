import Foundation
import ReportFormats
import TestSupport
import XCTest

/// Profiles with known figures, built the way the session store will hand them over.
enum Fixtures {
    static let appBuildID = "4f1c2a9e0b7d33e18a5c6f0e2d9b1a7c44e5f601"
    static let libcBuildID = "9ad3b6e1c0f24d5a8e7b3c1d0f9e8a7b6c5d4e3f"

    /// `slide` moves every address (ASLR), as a second run of the same program would.
    static func modules(slide: UInt64 = 0) -> [ProfileModule] {
        [
            ProfileModule(path: "/usr/lib/x86_64-linux-gnu/libc.so.6", buildID: libcBuildID, start: 0x7f00_0000_0000 + slide, limit: 0x7f00_0010_0000 + slide, fileOffset: 0x28000),
            ProfileModule(path: "/srv/app/bin/app", buildID: appBuildID, start: 0x5555_0000_0000 + slide, limit: 0x5555_0001_0000 + slide, fileOffset: 0x1000, isMainBinary: true),
        ]
    }

    static func f(_ addr: UInt64, _ fn: String?, _ line: Int? = nil, file: String? = "src/app.c", inlined: Bool = false, module: Int = 1, slide: UInt64 = 0) -> ProfileFrame {
        ProfileFrame(address: (module == 1 ? 0x5555_0000_0000 : 0x7f00_0000_0000) + addr + slide, function: fn, file: fn == nil ? nil : file, line: line, inlined: inlined, module: module)
    }

    /// Three stacks: request bodies leaked through an inlined helper, a cache (mmap), and one through an
    /// unsymbolized libc frame.
    static func profile(slide: UInt64 = 0, bodyBlocks: UInt64 = 4) -> Profile {
        let body = ProfileStack(
            frames: [
                f(0x1256, "read_body", 26, inlined: true, slide: slide), f(0x1256, "handle", 34, slide: slide),
                f(0x13bd, "main", 59, slide: slide), f(0x29d90, nil, module: 0, slide: slide),
            ],
            kind: "heap", pid: 4242, inUseBytes: bodyBlocks * 1_048_576, inUseBlocks: bodyBlocks, allocatedBytes: 10 * 1_048_576, allocatedBlocks: 10)
        let cache = ProfileStack(
            frames: [f(0x1327, "cache_put", 44, slide: slide), f(0x13f7, "main", 62, slide: slide), f(0x29d90, nil, module: 0, slide: slide)],
            kind: "mmap", pid: 4242, inUseBytes: 1_310_720, inUseBlocks: 5, allocatedBytes: 1_310_720, allocatedBlocks: 5)
        let dup = ProfileStack(
            frames: [f(0x9a010, "__strdup", 41, file: "string/strdup.c", module: 0, slide: slide), f(0x1400, "log_line", 80, slide: slide), f(0x13f7, "main", 62, slide: slide)],
            kind: "heap", pid: 4242, inUseBytes: 4096, inUseBlocks: 64, allocatedBytes: 65536, allocatedBlocks: 1024)
        return Profile(stacks: [body, cache, dup], modules: modules(slide: slide), startTimeNs: 1_700_000_000_000_000_000, durationNs: 30_000_000_000)
    }
}

/// Tools the tests run as peers: found on PATH, or the test is skipped with the reason printed.
enum Peer {
    static func find(_ name: String, hint: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        let reason = "\(name) is not installed (\(hint)); tools/setup.sh installs it"
        print("skipping: \(reason)")
        throw XCTSkip(reason)
    }

    static func tempFile(_ name: String) -> URL {
        Scratch.directory.appendingPathComponent("reportformats-\(getpid())-\(UUID().uuidString.prefix(8))-\(name)")
    }
}
