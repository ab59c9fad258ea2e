// Times the report formats on a synthetic 131k-stack, 38-frame profile (SyntheticProfile), the size
// of the collector-core issue's benchmark session:
//   swift build -c release --product formats-bench && .build/release/formats-bench [STACKS [NAME]]
// Prints one line per format: wall time (median of 3) and the output's size in bytes (or its count of
// entries, for the analyses).
import Foundation
import ReportFormats

/// A second argument picks the formats whose names contain it (`formats-bench 131072 diff`).
let only = CommandLine.arguments.dropFirst(2).first

func measure(_ name: String, runs: Int = 3, _ body: () throws -> Int) rethrows {
    if let only, !name.contains(only) { return }
    var times: [Double] = []
    var size = 0
    for _ in 0..<runs {
        let start = DispatchTime.now().uptimeNanoseconds
        size = try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    times.sort()
    print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: "%8.3f s  %10d", times[times.count / 2], size))
}

let stacks = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 131_072
let genStart = DispatchTime.now().uptimeNanoseconds
let profile = SyntheticProfile.make(stacks: stacks, depth: 38, seriesPoints: 16)
let base = SyntheticProfile.make(stacks: stacks, depth: 38, seriesPoints: 16, seed: 2)
print("input: \(profile.stacks.count) stacks, \(profile.stacks.reduce(0) { $0 + $1.frames.count }) frames, generated in " +
    String(format: "%.1f s", Double(DispatchTime.now().uptimeNanoseconds - genStart) / 1e9))

try measure("pprof (gzip'd)") { try PprofEncoder().encode(profile).count }
measure("folded stacks") { FoldedStacks.render(profile).utf8.count }
measure("flame graph (leak)") { FlameGraph.svg(profile).utf8.count }
measure("flame graph (growth)") { FlameGraph.svg(profile, options: .init(mode: .growth)).utf8.count }
measure("growth ranking") { GrowthRanking(profile).entries.count }
measure("churn report + text") {
    let stacks = profile.stacks.map { ChurnReport.Stack(frames: $0.frames, temporaryBlocks: $0.allocatedBlocks - $0.inUseBlocks, temporaryBytes: $0.allocatedBytes - $0.inUseBytes, allocatedBlocks: $0.allocatedBlocks) }
    let r = ChurnReport(threshold: "freed before the same thread's next allocation", totalAllocations: 1 << 30, stacks: stacks, modules: profile.modules, top: 10)
    return ChurnTextRenderer.render(r).utf8.count
}
measure("peak report + text") {
    let r = PeakReport(total: .init(kind: "heap and mmap", timeNs: 1, bytes: 1 << 30, blocks: 1 << 20), kinds: [], nowBytes: 1 << 29, atPeak: profile, top: 10)
    return PeakTextRenderer.render(r).utf8.count
}
measure("diff") { ProfileDiff(base: base, new: profile).changes.count }
func liveModel(_ sort: LiveView.Sort = .bytes) -> LiveView.Model {
    LiveView.Model(profile: profile, pid: 4242, command: "server --port 8080", rssBytes: 3 << 30, lostEvents: 0, elapsedNs: 16_000_000_000, sort: sort)
}
measure("live view model, by bytes") { liveModel().rows.count }
measure("live view model, by growth") { liveModel(.growth).rows.count }
let live = liveModel()
measure("live view redraw", runs: 5) { LiveView.render(live, width: 160, height: 48).reduce(0) { $0 + $1.utf8.count } }
