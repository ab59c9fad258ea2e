import Foundation
@testable import LeakReport
import ReportFormats
import SessionStore
import TestSupport
import Vocabulary
import XCTest

/// The live view's refresh reads only what the collector added since the last one (new stacks, new
/// intervals, the small tables) and keeps the rest: after every refresh of a growing session its model
/// is exactly the one a fresh read of the whole session gives, and its figures are the session's totals.
final class LiveRefreshTests: XCTestCase {
    /// The session as the collector's own writer writes it, batch by batch: each batch carries the totals
    /// of the stacks that changed, the same figures as the interval's history, and the interval's row.
    private final class GrowingSession {
        let path: String
        let writer: SessionWriter
        let start: UInt64 = 5_000_000_000_000
        var figures: [LiveAggregateKey: (bytes: UInt64, blocks: UInt64)] = [:]
        var flushes = 0

        init(_ name: String, intervalMs: Int = 1000) throws {
            path = Pipeline.sessionPath(name)
            // This test process as the traced one: alive, so the session reads as still running.
            let info = SessionInfo(
                mode: .launch, command: ["/tmp/app", "--serve"], pid: getpid(), startRealtimeNs: 1_700_000_000_000_000_000,
                startMonotonicNs: start, intervalMs: intervalMs)
            writer = try SessionWriter(creating: path, info: info)
        }

        /// One flush a second: the given stacks' new figures, with whatever else the batch holds.
        func flush(_ changes: [(UInt64, BlockKind, UInt64, UInt64)], rss: UInt64, lost: UInt64 = 0, _ fill: (inout SessionBatch) -> Void = { _ in }) throws {
            flushes += 1
            var b = SessionBatch()
            b.timeNs = start + UInt64(flushes) * 1_000_000_000
            fill(&b)
            for (stack, kind, bytes, blocks) in changes {
                let key = LiveAggregateKey(stackID: SessionStackID(stack), kind: kind)
                figures[key] = (bytes, blocks)
                b.totals.append(TotalRow(stackID: key.stackID, kind: kind, bytes: bytes, blocks: blocks, totalBytes: bytes, totalBlocks: blocks))
                b.history.append(HistoryPoint(stackID: key.stackID, kind: kind, bytes: bytes, blocks: blocks))
            }
            var kinds: [BlockKind: KindTotal] = [:]
            for (k, f) in figures {
                kinds[k.kind, default: KindTotal()].bytes += f.bytes
                kinds[k.kind, default: KindTotal()].blocks += f.blocks
            }
            let all = kinds.values.reduce(UInt64(0)) { $0 + $1.bytes }
            b.interval = IntervalRow(timeNs: b.timeNs, outstanding: kinds, rssBytes: rss)
            b.peaks = [PeakRow(dimension: .all, epoch: UInt64(flushes), timeNs: b.timeNs, bytes: all, blocks: 0)]
            b.counters = [.lostEvents: lost]
            try writer.write(b)
        }
    }

    private static func line(_ id: Int64, _ address: UInt64, module: Int64, _ function: String, _ line: Int) -> LocationRecord {
        LocationRecord(id: id, address: address, moduleID: module, offset: 0x10, lines: [SymbolLine(function: function, file: "/src/app.c", line: line)])
    }

    /// A session that grows between refreshes by new stacks (one in a library that appears only then,
    /// one suppressed, one sharing its callers with an old one), a new kind of an old stack, stacks that
    /// shrink and grow, and more intervals than the series keep (so every refresh samples them again).
    func testIncrementalRefreshesOfAGrowingSessionEqualAFreshRead() throws {
        let s = try GrowingSession("live_refresh_writer")
        try s.flush([(1, .heap, 4096, 4), (2, .heap, 1 << 20, 1)], rss: 10_000_000) { b in
            b.spaces = [SpaceRow(id: 1, info: SpaceInfo(kind: .user, pid: getpid(), command: ["/tmp/app", "--serve"], startNs: s.start))]
            b.modules = [ModuleRow(id: 1, space: 1, path: "/tmp/app", buildID: "ab12", bias: 0, lo: 0x400000, hi: 0x410000, loadedNs: s.start)]
            b.locations = [
                Self.line(1, 0x401100, module: 1, "cache_put", 12), Self.line(2, 0x401200, module: 1, "handle", 20),
                Self.line(3, 0x401300, module: 1, "main", 30), Self.line(4, 0x401400, module: 1, "read_body", 40),
            ]
            b.stacks = [
                StackRecord(id: 1, space: 1, origin: .user, truncated: false, locations: [1, 2, 3]),
                StackRecord(id: 2, space: 1, origin: .user, truncated: false, locations: [4, 2, 3]),
            ]
        }
        // Series of at most 3 points: the 5 intervals below are sampled down, and differently each time.
        let request = ProfileRequest(suppressions: Suppressions(builtins: true, patterns: ["suppress_me"]), maxSeriesPoints: 3)
        let live = try LiveSession.read(s.path, request: request, sort: .bytes)
        try assertSameAsFreshRead(live, request)
        XCTAssertEqual(live.model.rows.map(\.bytes), [1 << 20, 4096])

        try s.flush([(2, .heap, 1 << 19, 1), (3, .heap, 999, 1), (4, .heap, 8192, 2), (1, .mmap, 65536, 1)], rss: 12_000_000) { b in
            b.modules = [ModuleRow(id: 2, space: 1, path: "/usr/lib/libplugin.so", buildID: "cd34", bias: 0x7f00_0000_0000, lo: 0x7f00_0000_1000,
                hi: 0x7f00_0000_9000, loadedNs: s.start + 1)]
            b.locations = [
                Self.line(5, 0x7f00_0000_1100, module: 2, "plugin_alloc", 7), Self.line(6, 0x401500, module: 1, "suppress_me", 50),
            ]
            b.stacks = [
                StackRecord(id: 3, space: 1, origin: .user, truncated: false, locations: [6, 3]),
                StackRecord(id: 4, space: 1, origin: .user, truncated: false, locations: [5, 2, 3]),
            ]
        }
        try live.refresh(sort: .bytes)
        try assertSameAsFreshRead(live, request)
        let plugin = try XCTUnwrap(live.model.profile.stacks.first { $0.frames.first?.function == "plugin_alloc" })
        XCTAssertEqual(plugin.frames.map(\.function), ["plugin_alloc", "handle", "main"])
        XCTAssertEqual(plugin.frames.first?.module.map { live.model.profile.modules[$0].path }, "/usr/lib/libplugin.so")
        XCTAssertFalse(live.model.profile.stacks.contains { $0.frames.contains { $0.function == "suppress_me" } }, "suppressed")
        XCTAssertEqual(live.model.profile.stacks.map(\.kind), ["heap", "mmap", "heap", "heap"], "stack 1's new kind sorts beside it")

        // Three intervals between two refreshes, one new stack among them.
        try s.flush([(4, .heap, 16384, 4)], rss: 13_000_000)
        try s.flush([(4, .heap, 32768, 8), (1, .heap, 0, 0), (5, .heap, 100, 1)], rss: 14_000_000, lost: 7) { b in
            b.locations = [Self.line(7, 0x401600, module: 1, "late_start", 60)]
            b.stacks = [StackRecord(id: 5, space: 1, origin: .user, truncated: false, locations: [7, 3])]
        }
        try s.flush([(4, .heap, 65536, 16)], rss: 15_000_000, lost: 7)
        try live.refresh(sort: .growth)
        try assertSameAsFreshRead(live, request)
        let m = live.model
        XCTAssertEqual(m.lostEvents, 7)
        XCTAssertEqual(m.rssBytes, 15_000_000)
        XCTAssertEqual(m.outstandingBytes, 65536 + 65536 + (1 << 19) + 100)
        XCTAssertEqual(m.peakBytes, 65536 + 65536 + (1 << 19) + 100 + 999, "the peak row as last written (suppressed stacks too)")
        XCTAssertEqual(m.totalSeries.count, 5)
        // Five intervals sampled to 3 (the first, middle and last); the plugin stack first appeared in the
        // second, so its series starts at 0 at the first.
        let grown = try XCTUnwrap(m.profile.stacks.first { $0.frames.first?.function == "plugin_alloc" })
        XCTAssertEqual(grown.series, [SeriesPoint(timeNs: 1_000_000_000, bytes: 0), SeriesPoint(timeNs: 3_000_000_000, bytes: 16384),
            SeriesPoint(timeNs: 5_000_000_000, bytes: 65536)])
        XCTAssertEqual(m.profile.stacks[m.rows[0].stack].frames.first?.function, "plugin_alloc", "by growth the plugin's steady growth first")
        try s.writer.finish(end: .exited(status: 0), endRealtimeNs: 1_700_000_006_000_000_000, endMonotonicNs: s.start + 6_000_000_000)
        try live.refresh(sort: .bytes)
        XCTAssertTrue(live.finished)
        try assertSameAsFreshRead(live, request, clock: true)
    }

    /// The terminal's reader refreshes the session on its own thread every collector interval, so a
    /// slow read never holds up keys or redraws: each new model wakes the view through the reader's fd,
    /// a paused reader reads nothing, and it ends with the collection.
    func testTheReaderRefreshesOnItsOwnThreadWakesTheViewAndPauses() throws {
        let s = try GrowingSession("live_reader_thread", intervalMs: 20)
        try s.flush([(1, .heap, 4096, 4)], rss: 1) { b in
            b.spaces = [SpaceRow(id: 1, info: SpaceInfo(kind: .user, pid: getpid(), command: ["/tmp/app"], startNs: s.start))]
            b.modules = [ModuleRow(id: 1, space: 1, path: "/tmp/app", buildID: "ab12", bias: 0, lo: 0x400000, hi: 0x410000, loadedNs: s.start)]
            b.locations = [Self.line(1, 0x401100, module: 1, "cache_put", 12), Self.line(2, 0x401200, module: 1, "main", 30)]
            b.stacks = [StackRecord(id: 1, space: 1, origin: .user, truncated: false, locations: [1, 2])]
        }
        let live = try LiveSession.read(s.path, request: ProfileRequest(), sort: .bytes)
        let reader = LiveReader(session: live, sort: .bytes)
        XCTAssertEqual(reader.latest.model.outstandingBytes, 4096)
        reader.start()
        func waitFor(_ what: String, _ done: () -> Bool) {
            let deadline = Date().addingTimeInterval(10)
            while !done() && Date() < deadline { _ = reader.next(after: reader.latest.generation, timeoutMs: 100) }
            XCTAssertTrue(done(), what)
        }
        try s.flush([(1, .heap, 8192, 8)], rss: 2)
        var fds = pollfd(fd: reader.wakeFD, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&fds, 1, 10_000), 1, "a new model wakes the view")
        waitFor("the reader reads the new interval") { reader.latest.model.outstandingBytes == 8192 }
        XCTAssertEqual(reader.latest.model.profile.stacks.first?.frames.map(\.function), ["cache_put", "main"])

        reader.set(paused: true)
        usleep(100_000)  // a read under way when the pause came finishes first
        let readsWhenPaused = reader.reads.count
        try s.flush([(1, .heap, 16384, 16)], rss: 3)
        usleep(300_000)  // 15 intervals
        XCTAssertEqual(reader.reads.count, readsWhenPaused, "paused, the reader reads nothing")
        XCTAssertEqual(reader.latest.model.outstandingBytes, 8192)
        reader.set(paused: false)
        waitFor("unpaused, it reads on") { reader.latest.model.outstandingBytes == 16384 }
        XCTAssertGreaterThan(reader.reads.count, readsWhenPaused)
        XCTAssertTrue(reader.reads.contains { $0.intervals == 1 && $0.ns > 0 && $0.cpuNs > 0 })

        try s.writer.finish(end: .exited(status: 0), endRealtimeNs: 1_700_000_006_000_000_000, endMonotonicNs: s.start + 6_000_000_000)
        waitFor("the reader sees the collection end") { reader.latest.finished }
        let stopped = Date()
        reader.stop()
        XCTAssertLessThan(Date().timeIntervalSince(stopped), 5, "a reader whose collection ended has no read left to finish")
    }

    /// A real program leaking while leakcollect writes its session: refreshed as it runs, the view sees
    /// the leak grow, and when it ends it equals a fresh read and the session's own totals.
    func testRefreshingWhileACollectorWritesMatchesTheFinishedSession() throws {
        let prog = try CProgram.build("live_refresh", source: LiveViewTerminalTests.source)
        let session = Pipeline.sessionPath("live_refresh")
        let collector = try RunningProcess([try BuildProducts.leakcollect, "--quiet", "--interval", "0.1", "-o", session, "--", prog.path, "25"])
        defer { collector.signal(SIGKILL) }
        let request = ProfileRequest()
        var live: LiveSession?
        let deadline = Date().addingTimeInterval(15)
        while live == nil {
            live = try? LiveSession.read(session, request: request, sort: .count)
            if live == nil {
                XCTAssertLessThan(Date(), deadline, "no readable session in 15 s")
                usleep(50_000)
            }
        }
        let view = try XCTUnwrap(live)
        func dripBlocks() -> UInt64 {
            view.model.profile.stacks.first { $0.frames.first?.function == "drip" }?.inUseBlocks ?? 0
        }
        var seen: [UInt64] = []
        while !view.finished {
            usleep(150_000)
            try view.refresh(sort: .count)
            seen.append(dripBlocks())
        }
        XCTAssertEqual(try collector.wait().status, 0)
        // The drip grew from refresh to refresh (25 steps of 0.1 s, refreshed every 0.15 s).
        XCTAssertEqual(seen, seen.sorted(), "\(seen)")
        XCTAssertGreaterThanOrEqual(Set(seen).count, 3, "\(seen)")
        XCTAssertEqual(seen.last, 25)
        try assertSameAsFreshRead(view, request, clock: true)
        // The figures are the session's totals: every stack `top` reads, with its bytes and blocks.
        let report = try TopReport.build(try SessionReader(path: session), options: TopOptions())
        XCTAssertEqual(view.model.outstandingBytes, report.stacks.reduce(0) { $0 + $1.bytes })
        for s in report.stacks {
            let name = s.frames.first?.function
            XCTAssertTrue(
                view.model.rows.contains { r in
                    let p = view.model.profile.stacks[r.stack]
                    return p.frames.first?.function == name && r.bytes == s.bytes && r.blocks == s.blocks
                }, "\(name ?? "?"): \(s.bytes) bytes in \(s.blocks) blocks")
        }
        XCTAssertTrue(report.stacks.contains { $0.frames.first?.function == "hold" && $0.bytes == 4 * 262144 })
    }

    /// The model of `live` field by field, and its screens in every order with the selection expanded,
    /// against a fresh read of the same session (`clock`: the session has ended, so elapsed times agree too).
    private func assertSameAsFreshRead(_ live: LiveSession, _ request: ProfileRequest, clock: Bool = false, line: UInt = #line) throws {
        let fresh = try LiveSession.read(live.path, request: request, sort: live.model.sort)
        let a = live.model, b = fresh.model
        XCTAssertEqual(a.profile, b.profile, "profile", line: line)
        XCTAssertEqual(a.rows.map { [$0.stack, Int($0.bytes), Int($0.blocks)] }, b.rows.map { [$0.stack, Int($0.bytes), Int($0.blocks)] }, line: line)
        XCTAssertEqual(a.totalSeries, b.totalSeries, line: line)
        XCTAssertEqual([a.outstandingBytes, a.peakBytes, a.rssBytes ?? 0, a.lostEvents], [b.outstandingBytes, b.peakBytes, b.rssBytes ?? 0, b.lostEvents], line: line)
        XCTAssertEqual("\(a.pid) \(a.command)", "\(b.pid) \(b.command)", line: line)
        XCTAssertEqual(live.finished, fresh.finished, line: line)
        if clock { XCTAssertEqual(a.elapsedNs, b.elapsedNs, line: line) }
        for sort in [LiveView.Sort.bytes, .count, .growth] {
            for selected in 0..<max(1, a.rows.count) {
                var x = a, y = b
                x.sort = sort
                y.sort = sort
                x.elapsedNs = 0
                y.elapsedNs = 0
                x.selected = selected
                y.selected = selected
                x.expanded = true
                y.expanded = true
                XCTAssertEqual(LiveView.render(x, width: 120, height: 40), LiveView.render(y, width: 120, height: 40), "\(sort) \(selected)", line: line)
            }
        }
    }
}
