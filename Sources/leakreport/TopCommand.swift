import Foundation
import ArgumentParser
import CLISupport
import LeakReport
import ReportFormats
import SessionStore
import Vocabulary

/// Which kinds `top --kind` selects.
enum KindChoice: String, ExpressibleByArgument, CaseIterable {
    case heap, mmap, slab, page, percpu, kernel, all

    var kinds: Set<BlockKind>? {
        switch self {
        case .heap: return [.heap]
        case .mmap: return [.mmap]
        case .slab: return [.kernelSlab]
        case .page: return [.kernelPage]
        case .percpu: return [.kernelPercpu]
        case .kernel: return [.kernelSlab, .kernelPage, .kernelPercpu]
        case .all: return nil
        }
    }
}

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "Top stacks by outstanding bytes (or count), like memleak.")

    @Argument(help: "Session file written by leakcollect.") var session: String
    @Option(help: "How many stacks to show.") var top: Int = 10
    @Option(help: "Order by bytes, by count of allocations, or by growth (the score of `leakreport growth`).") var sort: TopSort = .bytes
    @Flag(help: "Show temporary allocations instead, as `leakreport churn` does.") var temporary = false
    @Flag(help: "A top-like view of a session a running leakcollect writes, refreshed every interval (keys: b c g sort, p pause, up/down, enter expand, q quit).")
    var live = false
    @Flag(help: "With --live: print one screen (120x40) and how long reading and drawing it took, and exit.") var once = false
    /// tools/bench: follow a collection without a terminal and print how long each refresh took.
    @Flag(name: .customLong("measure-refresh"), help: .hidden) var measureRefresh = false
    @Option(name: .customLong("shorter-than"), help: "With --temporary: blocks that lived shorter than this (e.g. 1ms).") var shorterThan: String?
    @Option(name: .customLong("min-size"), help: "Only blocks of at least this size (e.g. 4096, 1M).") var minSize: String?
    @Option(name: .customLong("max-size"), help: "Only blocks of at most this size.") var maxSize: String?
    @Option(name: .customLong("older-than"), help: "Only blocks alive at least this long when the session ended (e.g. 30s, 5m).")
    var olderThan: String?
    @Option(help: "Which kind of memory: heap, mmap, slab, page, percpu, kernel or all.") var kind: KindChoice = .all
    @Option(help: "Only the allocations of this process (a session with --follow-children, or one that exec'd, has several).")
    var pid: Int32?
    @Flag(help: "List each live block's address and size under its stack.") var addresses = false
    @Option(help: "text or json.") var format: OutputFormat = .text
    @Option(help: "A file of leak:PATTERN lines (LeakSanitizer's form): stacks with a matching function, file or module are left out.")
    var suppressions: String?
    @Flag(name: .customLong("no-builtin-suppressions"), help: "Also count what the C/C++ runtime keeps on purpose (loader TLS, stdio buffers, ...).")
    var noBuiltinSuppressions = false

    func validate() throws {
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
        if shorterThan != nil, !temporary { throw ValidationError("--shorter-than goes with --temporary") }
        if once || measureRefresh, !live { throw ValidationError("--once and --measure-refresh go with --live") }
        if live, temporary || addresses || format != .text || minSize != nil || maxSize != nil || olderThan != nil {
            throw ValidationError("--live takes only --sort, --kind and the suppression options")
        }
    }

    func run() throws {
        if live {
            return try reporting {
                let patterns = try suppressions.map(Suppressions.patterns(fromFile:)) ?? []
                let request = ProfileRequest(kinds: kind.kinds, suppressions: Suppressions(builtins: !noBuiltinSuppressions, patterns: patterns))
                let options = LiveTerminal.Options(request: request, sort: LiveView.Sort(rawValue: sort.rawValue) ?? .bytes, ownProcess: true)
                let ms = { (ns: UInt64) in String(format: "%.1f ms", Double(ns) / 1e6) }
                if once {
                    let shot = try LiveTerminal.snapshot(session, options: options)
                    print(shot.lines.joined(separator: "\n"))
                    FileHandle.standardError.write(
                        Data("read \(ms(shot.loadNs)), a refresh after it \(ms(shot.refreshNs)), drawn \(ms(shot.renderNs))\n".utf8))
                    return
                }
                if measureRefresh {
                    let m = try LiveTerminal.measureRefreshes(session, options: options)
                    // The reads that found new intervals (the others only re-read the small tables).
                    let busy = m.reads.filter { $0.intervals > 0 }
                    func spread(_ ns: [UInt64]) -> String {
                        let sorted = ns.sorted()
                        return "median \(ms(sorted.isEmpty ? 0 : sorted[sorted.count / 2])), max \(ms(sorted.last ?? 0))"
                    }
                    let each = m.reads.map { "\(ms($0.ns)) cpu \(ms($0.cpuNs)) (\($0.intervals))" }.joined(separator: ", ")
                    FileHandle.standardError.write(
                        Data(
                            ("first read \(ms(m.firstNs)); \(m.redrawNs.count) redraws of a new model while collecting: \(spread(m.redrawNs)), "
                                + "re-sorted \(spread(m.resortNs)); \(m.reads.count) reads behind them on the reader's thread, \(busy.count) with new "
                                + "intervals: wall \(spread(busy.map(\.ns))), CPU \(spread(busy.map(\.cpuNs))); each read (new intervals): \(each)\n").utf8))
                    return
                }
                let view = LiveTerminal(path: session, options: options)
                if try view.run() == .collectionEnded {
                    let info = try SessionReader(path: session).info
                    print("collection ended: \(info.end?.summary ?? "its collector stopped without finishing the session"); session \(session)")
                }
            }
        }
        if temporary {
            return try reporting {
                let patterns = try suppressions.map(Suppressions.patterns(fromFile:)) ?? []
                let request = ProfileRequest(kinds: kind.kinds, suppressions: Suppressions(builtins: !noBuiltinSuppressions, patterns: patterns), frames: false)
                try ChurnCommand.report(session, request: request, top: top, shorterThan: shorterThan, format: format == .json ? .json : .text)
            }
        }
        do {
            var filter = LiveFilter(kinds: kind.kinds)
            filter.minSize = try minSize.map(ValueParsers.size)
            filter.maxSize = try maxSize.map(ValueParsers.size)
            filter.minAgeNs = try olderThan.map(ValueParsers.duration)
            let reader = try SessionReader(path: session)
            if let pid {
                let spaces = try reader.spaces().filter { $0.info.kind == .user }
                let mine = Set(spaces.filter { $0.info.pid == pid }.map(\.id))
                guard !mine.isEmpty else {
                    let known = Array(Set(spaces.compactMap(\.info.pid))).sorted().map(String.init).joined(separator: ", ")
                    throw UserError("pid \(pid) is not in \(session) (its processes: \(known.isEmpty ? "none" : known))")
                }
                filter.spaces = mine
            }
            let patterns = try suppressions.map(Suppressions.patterns(fromFile:)) ?? []
            let rules = Suppressions(builtins: !noBuiltinSuppressions, patterns: patterns)
            let report = try TopReport.build(
                reader, options: TopOptions(top: top, sort: sort, filter: filter, addresses: addresses, suppressions: rules))
            switch format {
            case .text: print(TopTextRenderer.render(report), terminator: "")
            case .json: print(TopJSON(report).encoded(), terminator: "")
            }
        } catch let e as SessionError {
            throw UserError(e.description)
        } catch let e as ValueParsers.Invalid {
            throw UserError(e.description)
        }
    }
}

extension TopSort: ExpressibleByArgument {}
