import KernelSession
import ReportFormats
import SessionStore
import Vocabulary

/// `leakreport top` as text, the way memleak prints outstanding allocations.
public enum TopTextRenderer {
    /// What a resync after lost events did, and what it means for the figures.
    static func resyncLine(_ r: TopReport, resyncs: UInt64) -> String {
        func at(_ ns: UInt64?) -> String {
            guard let ns, ns >= r.info.startMonotonicNs else { return "?" }
            return "+" + Formatting.duration(ns: ns - r.info.startMonotonicNs)
        }
        return "resynchronized: \(resyncs) time\(resyncs == 1 ? "" : "s") from the shim's live table after \(r.lostEvents) lost events "
            + "(first loss seen at \(at(r.counters[.resyncFirstLossNs])), last resync at \(at(r.counters[.resyncLastNs])); "
            + "\(r.counters[.resyncRemovedBlocks] ?? 0) blocks removed, \(r.counters[.resyncAddedBlocks] ?? 0) added): "
            + exactness(r) + "; per-interval history between a loss and its resync is approximate\n"
    }

    /// "exact" only when the table the resync read held every live block: one that was full, or slots that
    /// could not be read, leave blocks the resync never saw.
    static func exactness(_ r: TopReport) -> String {
        let full = r.counters[.liveTableFull] ?? 0, unreadable = r.counters[.liveTableUnreadableSlots] ?? 0
        guard full > 0 || unreadable > 0 else { return "outstanding heap totals are exact" }
        return "outstanding heap totals are approximate (the live table could not hold \(full) allocations and \(unreadable) of its slots were unreadable)"
    }

    public static func render(_ r: TopReport) -> String {
        var out = "session: \(Formatting.sessionLine(r.info))\n"
        // The launched process's images, when it exec'd: the session line names the last one.
        if let main = r.processes.first(where: { $0.pid == r.info.pid }), main.images.count > 1 {
            out += "images of pid \(main.pid): " + main.images.map { Formatting.command($0.command) }.joined(separator: ", then ") + "\n"
        }
        if let interval = r.samplingIntervalBytes {
            out += "sampled: allocations under \(interval) bytes were sampled by bytes (mean interval \(interval)); the figures are estimates, larger blocks are exact\n"
        }
        out += "outstanding: \(r.outstandingBytes) bytes in \(r.outstandingBlocks) allocations; lost_events: \(r.lostEvents)\n"
        let multi = r.processes.count > 1
        if multi {
            out += "\(r.processes.count) processes:\n"
            for p in r.processes {
                var line = "\tpid \(p.pid)"
                if let parent = p.parentPid { line += " (child of \(parent))" }
                line += ": \(p.bytes) bytes in \(p.blocks) allocations; " + p.images.map { Formatting.command($0.command) }.joined(separator: ", then ")
                out += line + "\n"
            }
        }
        if !r.suppressed.isEmpty {
            let bytes = r.suppressed.reduce(0) { $0 + $1.bytes }, blocks = r.suppressed.reduce(0) { $0 + $1.blocks }
            let each = r.suppressed.map { "\($0.rule): \($0.bytes) bytes in \($0.blocks)" }.joined(separator: "; ")
            out += "suppressed: \(bytes) bytes in \(blocks) allocations kept on purpose by the runtime or matched by --suppressions (\(each))\n"
        }
        if let blocks = r.counters[.snapshotBlocks] {
            out += "before the attach: \(blocks) blocks (\(r.counters[.snapshotBytes] ?? 0) bytes) were live, "
                + "read from the shim's live table with their stacks and allocation times\n"
        }
        if let resyncs = r.counters[.resyncs], resyncs > 0 {
            out += resyncLine(r, resyncs: resyncs)
        } else if r.lostEvents > 0 {
            out += "warning: \(r.lostEvents) events were lost; some frees may be missing, so some blocks may be reported live that are not\n"
        }
        if let ns = r.counters[.ringUnmappedNs], ns > 0 {
            let at = ns >= r.info.startMonotonicNs ? "+" + Formatting.duration(ns: ns - r.info.startMonotonicNs) : "?"
            out += "warning: the program unmapped its ring at \(at): nothing after that was tracked, so blocks it freed later are reported live\n"
        }
        if let cut = r.counters[.stacksCutShort], cut > 0 {
            out += "note: \(cut) stacks may be cut short: BPF-only mode walks stacks through frame pointers, which code built without them breaks (marked below)\n"
        }
        if r.stacks.isEmpty {
            out += "No outstanding allocations.\n"
            return out
        }
        let shown = r.stacks.count < r.matchingStacks ? "Top \(r.stacks.count) of \(r.matchingStacks)" : "\(r.stacks.count)"
        out += "\(shown) stacks with outstanding allocations (by \(r.options.sort == .growth ? "growth score" : r.options.sort.rawValue)):\n"
        for s in r.stacks {
            out += "\t\(s.bytes) bytes in \(s.blocks) allocations from stack"
            if s.kind != .heap { out += " (\(s.kind.rawValue))" }
            if let g = s.growth { out += g.score > 0 ? ", growing \(ByteFormat.rate(g.score)) (score)" : ", not growing" }
            if multi, let pid = s.pid { out += " in pid \(pid)" }
            out += "\n"
            if s.frames.isEmpty { out += "\t\t[no stack captured]\n" }
            // Frames below main are the C runtime starting the program: the same in every stack, so
            // text leaves them out (JSON keeps every frame).
            let end = s.frames.firstIndex { $0.function == "main" }.map { $0 + 1 } ?? s.frames.count
            for f in s.frames[..<end] { out += "\t\t" + Formatting.frame(f) + "\n" }
            if s.truncated { out += "\t\t[stack truncated]\n" }
            if s.mayBeIncomplete { out += "\t\t[stack may be cut short: its frame-pointer walk ended outside every module]\n" }
            for b in s.liveBlocks {
                let age = r.info.asOfNs >= b.timeNs ? Formatting.duration(ns: r.info.asOfNs - b.timeNs) : "0 s"
                var line = "\t\t\(Formatting.hex(b.address)) size \(b.size) age \(age) \(b.function.rawValue)"
                if let backing = b.backing { line += " \(backing.rawValue)" }
                if let comm = s.taskComm { line += " \(comm)[\(s.taskPid ?? 0)]" }
                out += line + "\n"
            }
        }
        return out
    }
}
