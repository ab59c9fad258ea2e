@testable import CollectionRunner
@testable import KernelSide
import ShimSource
@testable import Symbols
import Vocabulary

/// The /proc and /tmp text the collector parses: maps, status (VmRSS, ids, NSpid, CapEff), cmdline,
/// meminfo, vmstat, loadavg, kallsyms and perf maps. One input is given to every parser, each with the
/// lookups the collector then makes.
enum ProcTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        let text = String(decoding: input, as: UTF8.self)
        let path = Scratch.write(input, name: "proc")

        let maps = ProcMaps.parse(text)
        for m in maps.prefix(64) {
            _ = m.mapFilesName
            _ = m.isFile
        }

        let perf = PerfMap(text: text[...], bytesRead: input.count)
        var probes: [UInt64] = [0, 1, UInt64.max]
        for m in maps.prefix(16) { probes += [m.start, m.end &- 1, m.end, m.offset] }
        for p in probes { _ = perf.lookup(p) }

        if let k = KernelSymbols.load(path: path) {
            for p in probes { _ = k.resolve(p) }
        }

        _ = SystemSnapshot.meminfo(path: path)
        _ = SystemSnapshot.oomKills(path: path)
        _ = SystemSnapshot.loadavg(path: path)
        _ = Capabilities.missing(statusPath: path)
        for field in ["VmRSS:", "VmHWM:"] { _ = HostFacts.statusBytes(status: text, field: field) }
        _ = ProcessOwner.parse(status: text)?.refusal(pid: 1)
        _ = PerfMap.namespacePid(status: text)
        _ = ShimCollection.parseCommandLine(text)
    }
}
