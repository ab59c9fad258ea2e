/// A large, reproducible profile shaped like a real service's: a few hot paths and a long tail, deep
/// stacks with C++-length names, every address in one of a few modules. Benchmarks (tools/bench) and
/// the size tests of the flame graph use it; the same seed gives the same profile.
public enum SyntheticProfile {
    public static func make(stacks: Int = 131_072, depth: Int = 38, seriesPoints: Int = 0, seed: UInt64 = 1) -> Profile {
        var rng = SplitMix64(seed: seed)
        let modules = [
            ProfileModule(path: "/srv/app/bin/server", buildID: "0b5c7e21d9a44f6c8e3f1a2b3c4d5e6f70819203", start: 0x5600_0000_0000, limit: 0x5600_1000_0000, fileOffset: 0, isMainBinary: true),
            ProfileModule(path: "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", buildID: "7a1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4", start: 0x7f10_0000_0000, limit: 0x7f10_0100_0000),
            ProfileModule(path: "/usr/lib/x86_64-linux-gnu/libc.so.6", buildID: "9ad3b6e1c0f24d5a8e7b3c1d0f9e8a7b6c5d4e3f", start: 0x7f20_0000_0000, limit: 0x7f20_0100_0000),
        ]
        let components = ["http", "rpc", "storage", "cache", "index", "codec", "auth", "sched", "metrics", "log"]
        // Each level of the call tree has its own functions; a caller picks a callee by a skewed draw,
        // so a few paths carry most of the memory, as in real programs.
        let fanout = 24
        func function(level: Int, choice: Int) -> (name: String, address: UInt64) {
            let c = components[(level * 7 + choice) % components.count]
            let name = "\(c)::Handler\(level)_\(choice)::process(std::basic_string_view<char>, \(c)::Context&)"
            return (name, 0x5600_0000_1000 + UInt64(level * 4096 + choice * 64))
        }
        var out: [ProfileStack] = []
        out.reserveCapacity(stacks)
        for _ in 0..<stacks {
            var frames: [ProfileFrame] = []
            frames.reserveCapacity(depth + 2)
            frames.append(ProfileFrame(address: 0x7f20_0002_9d90, function: "__libc_start_call_main", file: "../sysdeps/nptl/libc_start_call_main.h", line: 58, module: 2))
            frames.append(ProfileFrame(address: 0x5600_0000_0a10, function: "main", file: "src/main.cc", line: 41, module: 0))
            for level in 0..<(depth - 4) {
                // Squaring a uniform draw favours the first callees.
                let u = Double(rng.next() % 1_000_000) / 1_000_000
                let choice = Int(u * u * Double(fanout))
                let f = function(level: level, choice: choice)
                frames.append(ProfileFrame(address: f.address, function: f.name, offset: 0x2c, file: "src/level\(level).cc", line: 100 + choice, module: 0))
            }
            frames.append(ProfileFrame(address: 0x7f10_0009_a120, function: "operator new(unsigned long)", file: "../../../../libstdc++-v3/libsupc++/new_op.cc", line: 50, module: 1))
            frames.append(ProfileFrame(address: 0x7f20_000a_5010, function: "malloc", file: "malloc.c", line: 3287, module: 2))
            frames.reverse()
            let blocks = 1 + rng.next() % 64
            let size: UInt64 = 16 << (rng.next() % 10)
            let bytes = blocks * size
            var series: [SeriesPoint] = []
            if seriesPoints > 1 {
                let leaking = rng.next() % 4 == 0
                series = (0..<seriesPoints).map { i in
                    let v = leaking ? bytes * UInt64(i + 1) / UInt64(seriesPoints) : bytes * (1 + UInt64(i % 3)) / 3
                    return SeriesPoint(timeNs: UInt64(i) * 1_000_000_000, bytes: v)
                }
            }
            out.append(ProfileStack(frames: frames, kind: "heap", pid: 4242, inUseBytes: bytes, inUseBlocks: blocks, allocatedBytes: bytes * 3, allocatedBlocks: blocks * 3, series: series))
        }
        return Profile(stacks: out, modules: modules, startTimeNs: 1_700_000_000_000_000_000, durationNs: UInt64(max(seriesPoints, 1)) * 1_000_000_000)
    }
}

/// A small, fast, reproducible pseudo-random generator (Steele, Lea and Flood's SplitMix64).
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
