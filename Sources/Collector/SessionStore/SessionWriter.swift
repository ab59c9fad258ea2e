import Foundation
import GRDB
import Vocabulary

/// Writes one session file. Every source's collection uses this one writer: create, then `write` a
/// batch per interval (one transaction each, so a crash loses at most the current interval), then
/// `finish`. The file is SQLite in WAL mode, so `leakreport` can read it while it grows.
///
/// The writer interns what repeats: strings, locations (by the symbolizer's ids) and stack-tree nodes,
/// and keeps per-chunk sizes of the live-block checkpoints to decide when to compact a chunk.
public final class SessionWriter {
    public let path: String
    private let queue: DatabaseQueue
    private var info: SessionInfo
    /// The file's identity when it was created, to notice it was removed or replaced under us.
    private var identity: (dev: UInt64, ino: UInt64) = (0, 0)

    private var strings: [String: Int64] = [:]
    /// Stack-tree nodes by (parent, location), packed into one word while both fit (they always do in
    /// practice: 2^40 nodes, 2^24 locations), else in a dictionary of pairs.
    private var nodes = IntMap(capacity: 1 << 16)
    private struct NodeKey: Hashable {
        var parent: Int64
        var location: Int64
    }
    private var wideNodes: [NodeKey: Int64] = [:]
    private var nodeCount: Int64 = 0
    private var newNodes: [(parent: Int64, location: Int64)] = []
    private struct ChunkKey: Hashable {
        var space: SpaceID
        var kind: BlockKind
        var chunk: UInt64
    }
    private struct ChunkState {
        var baseBytes = 0
        var deltaBytes = 0
        var deltas = 0
        var nextSeq: Int64 = 0
    }
    private var chunks: [ChunkKey: ChunkState] = [:]
    /// Chunks merged into a new base so far (for the benchmark's and tests' curiosity).
    public private(set) var compactions = 0

    /// What a batch added to the writer's own memory, so a failed transaction (disk full) can be undone
    /// there too: the file rolled back, and the writer must not believe it holds what it does not.
    private struct UndoLog {
        var strings: [String] = []
        var nodeKeys: [UInt64] = []
        var wideKeys: [NodeKey] = []
        var nodeCount: Int64 = 0
        var chunks: [ChunkKey: ChunkState?] = [:]
        var compactions = 0
    }
    private var undo = UndoLog()

    /// Creates a new session file at a path `SessionPath.prepare` accepted (it rotated any earlier
    /// session to `.old`). `parts`: the schema parts besides the core tables (the kernel tables).
    /// `mode`: the file's permission bits (0600 when the traced process is another user's).
    public init(creating path: String, info: SessionInfo, parts: [any SchemaPart.Type] = [], mode: mode_t = 0o644) throws(SessionError) {
        self.path = path
        self.info = info
        do {
            // Created first with our mode, exclusively: never through a file someone slipped in since the check.
            let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode)
            guard fd >= 0 else { throw SessionError.cannotCreate(path: path, detail: String(cString: strerror(errno))) }
            fchmod(fd, mode)
            var st = stat()
            if fstat(fd, &st) == 0 { identity = (UInt64(st.st_dev), UInt64(st.st_ino)) }
            close(fd)
            var config = Configuration()
            config.journalMode = .wal
            config.prepareDatabase { db in
                // A crash loses at most the last interval either way; NORMAL keeps flushes cheap.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                // After a big interval the WAL is truncated back instead of staying at its largest.
                try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            }
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.write { db in
                try db.execute(sql: "PRAGMA application_id = \(SessionSchema.applicationID)")
            }
            try SessionSchema.migrator(parts: parts).migrate(queue)
            try queue.write { db in
                try db.execute(sql: "PRAGMA user_version = \(SessionSchema.version)")
                try Self.writeMeta(info, db)
            }
        } catch let e as SessionError {
            throw e
        } catch {
            throw .cannotCreate(path: path, detail: Self.oneLine(error))
        }
    }

    /// Applies one interval's changes in a single transaction. The batch is consumed: its live blocks
    /// are sorted in place (millions of them at scale: a copy would double the writer's memory).
    public func write(_ batch: consuming SessionBatch) throws(SessionError) {
        var live = batch.live
        batch.live = [:]
        let b = batch
        undo = UndoLog(nodeCount: nodeCount, compactions: compactions)
        do {
            try queue.write { db in try apply(b, &live, db) }
        } catch {
            rollBack()
            throw .writeFailed(path: path, detail: Self.oneLine(error))
        }
    }

    private func rollBack() {
        for s in undo.strings { strings[s] = nil }
        for k in undo.nodeKeys { nodes.remove(k) }
        for k in undo.wideKeys { wideNodes[k] = nil }
        nodeCount = undo.nodeCount
        newNodes.removeAll()
        lastPath = []
        lastNodes = []
        for (k, old) in undo.chunks { chunks[k] = old }
        compactions = undo.compactions
    }

    /// Records how the session ended and checkpoints the WAL into the main file.
    public func finish(end: SessionEnd?, endRealtimeNs: UInt64, endMonotonicNs: UInt64) throws(SessionError) {
        info.end = end
        info.endRealtimeNs = endRealtimeNs
        info.endMonotonicNs = endMonotonicNs
        do {
            try queue.write { db in try Self.writeMeta(info, db) }
        } catch {
            throw .writeFailed(path: path, detail: "the end of the session could not be recorded (\(Self.oneLine(error))); everything collected is in it")
        }
        // Folding the WAL into the main file can fail on a full disk; the WAL then still holds it all.
        try? queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// False once the path no longer names the file this writer writes (removed, or its directory was).
    public var fileIsAtPath: Bool {
        var st = stat()
        return stat(path, &st) == 0 && (UInt64(st.st_dev), UInt64(st.st_ino)) == identity
    }

    /// Writes a complete copy of the session to `copyPath` (SQLite's VACUUM INTO, which reads through
    /// this writer's connection, so a file removed from its directory can still be saved).
    public func saveCopy(to copyPath: String) throws(SessionError) {
        do {
            try queue.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [copyPath]) }
        } catch {
            throw .cannotCreate(path: copyPath, detail: Self.oneLine(error))
        }
    }

    /// Replaces the stored session metadata (for example once the traced pid is known).
    public func update(info: SessionInfo) throws(SessionError) {
        self.info = info
        do {
            try queue.write { db in try Self.writeMeta(info, db) }
        } catch {
            throw .writeFailed(path: path, detail: Self.oneLine(error))
        }
    }

    static func oneLine(_ error: Error) -> String {
        let text: String
        if let db = error as? DatabaseError { text = db.message ?? "\(db.resultCode)" } else { text = "\(error)" }
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    private static func writeMeta(_ info: SessionInfo, _ db: Database) throws {
        let st = try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
        for (k, v) in info.metaRows() { try st.execute(arguments: [k.rawValue, v]) }
    }

    // MARK: one batch

    private func apply(_ b: SessionBatch, _ live: inout [LiveTableKey: LiveChanges], _ db: Database) throws {
        for s in b.spaces { try writeSpace(s, db) }
        if !b.modules.isEmpty {
            // A module's row can come twice (early with the stacks symbolized against it, then with its
            // cut): the second write keeps an unload the first one's row has since been given.
            let st = try db.cachedStatement(
                sql: """
                    INSERT INTO modules (id, space, path, build_id, bias, lo, hi, loaded_ns, unloaded_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET space = excluded.space, path = excluded.path, build_id = excluded.build_id,
                        bias = excluded.bias, lo = excluded.lo, hi = excluded.hi, loaded_ns = excluded.loaded_ns,
                        unloaded_ns = COALESCE(excluded.unloaded_ns, modules.unloaded_ns)
                    """)
            for m in b.modules {
                try st.execute(arguments: [
                    m.id, Int64(m.space), m.path, m.buildID, sqlInt(m.bias), sqlInt(m.lo), sqlInt(m.hi), sqlInt(m.loadedNs), m.unloadedNs.map(sqlInt),
                ])
            }
        }
        if !b.moduleUnloads.isEmpty {
            let st = try db.cachedStatement(sql: "UPDATE modules SET unloaded_ns = ? WHERE id = ?")
            for u in b.moduleUnloads { try st.execute(arguments: [sqlInt(u.timeNs), u.id]) }
        }
        for l in b.locations { try writeLocation(l, db) }
        let firstNode = nodeCount + 1
        // In root-first path order, each stack shares the longest prefix it can with the one before it, so
        // the tree walk finds its callers in `lastNodes` instead of probing `nodes` for each (a cache miss
        // apiece at millions of nodes: half the writer's time on 131k distinct deep stacks).
        let order = b.stacks.indices.sorted { Self.rootFirstLess(b.stacks[$0].locations, b.stacks[$1].locations) }
        for i in order { try writeStack(b.stacks[i], db) }
        if !newNodes.isEmpty {
            try db.cachedStatement(sql: "INSERT INTO stack_tree (first, count, data) VALUES (?, ?, ?)").execute(arguments: [
                firstNode, newNodes.count, Data(PackedRows.encode(nodes: newNodes, first: firstNode)),
            ])
            newNodes.removeAll(keepingCapacity: true)
        }
        if !b.totals.isEmpty {
            let st = FastStatement(
                try db.cachedStatement(
                    sql: """
                        INSERT OR REPLACE INTO stack_totals (stack_id, kind, bytes, blocks, total_bytes, total_blocks, temporary_blocks,
                            temporary_bytes, peak_bytes, peak_blocks, peak_epoch, all_peak_bytes, all_peak_blocks, all_peak_epoch, lifetimes_blob)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """))
            for t in b.totals {
                try st.execute(
                    .int(Int64(t.stackID)), .text(t.kind.rawValue), .unsigned(t.bytes), .unsigned(t.blocks), .unsigned(t.totalBytes),
                    .unsigned(t.totalBlocks), .unsigned(t.temporaryBlocks), .unsigned(t.temporaryBytes), .unsigned(t.peakBytes),
                    .unsigned(t.peakBlocks), .unsigned(t.peakEpoch), .unsigned(t.allPeakBytes), .unsigned(t.allPeakBlocks),
                    .unsigned(t.allPeakEpoch), t.lifetimes.map { .blob(PackedRows.encode(lifetimes: $0)) } ?? .null)
            }
        }
        if !b.peaks.isEmpty {
            let st = try db.cachedStatement(sql: "INSERT OR REPLACE INTO peaks (dimension, epoch, time_ns, bytes, blocks) VALUES (?, ?, ?, ?, ?)")
            for p in b.peaks {
                try st.execute(arguments: [p.dimension.name, sqlInt(p.epoch), sqlInt(p.timeNs), sqlInt(p.bytes), sqlInt(p.blocks)])
            }
        }
        for (i, h) in b.carriedIntervals + (b.interval.map { [($0, b.history)] } ?? []) {
            try db.execute(
                sql: "INSERT OR REPLACE INTO intervals (time_ns, outstanding_blob, rss_bytes, history_blob) VALUES (?, ?, ?, ?)",
                arguments: [
                    sqlInt(i.timeNs), Data(PackedRows.encode(kinds: i.outstanding)), i.rssBytes.map(sqlInt), Data(PackedRows.encode(history: h)),
                ])
        }
        for key in live.keys.sorted() {
            guard var changes = live.removeValue(forKey: key) else { continue }
            try writeLive(key, &changes, db)
        }
        if !b.counters.isEmpty {
            let st = try db.cachedStatement(sql: "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)")
            for (name, value) in b.counters { try st.execute(arguments: [name.rawValue, sqlInt(value)]) }
        }
        for rows in b.records { try rows.write(to: db) }
        if b.timeNs != 0 {
            try db.execute(
                sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [MetaKey.lastFlushNs.rawValue, String(b.timeNs)])
        }
    }

    private func writeSpace(_ s: SpaceRow, _ db: Database) throws {
        let command = String(decoding: (try? JSONEncoder().encode(s.info.command)) ?? Data("[]".utf8), as: UTF8.self)
        try db.cachedStatement(
            sql: "INSERT OR REPLACE INTO spaces (id, kind, pid, command, start_ns, parent, sampling_interval, end_ns, end) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [
            Int64(s.id), s.info.kind.rawValue, s.info.pid.map { Int64($0) }, command, sqlInt(s.info.startNs), s.info.parent.map { Int64($0) },
            s.info.samplingIntervalBytes.map(sqlInt), s.endNs.map(sqlInt), s.end?.rawValue,
        ])
    }

    private func intern(_ s: String?, _ db: Database) throws -> Int64 {
        guard let s else { return 0 }
        if let id = strings[s] { return id }
        let id = Int64(strings.count + 1)
        try FastStatement(db.cachedStatement(sql: "INSERT INTO strings (id, text) VALUES (?, ?)")).execute(.int(id), .text(s))
        strings[s] = id
        undo.strings.append(s)
        return id
    }

    private func writeLocation(_ l: LocationRecord, _ db: Database) throws {
        var lines: [PackedRows.Line] = []
        for line in l.lines {
            lines.append(
                PackedRows.Line(
                    function: try intern(line.function, db), systemName: try intern(line.systemName, db), file: try intern(line.file, db),
                    line: line.line))
        }
        // Through SQLite's C API, as stacks are: a location per distinct address, thousands when a program ends.
        try FastStatement(
            db.cachedStatement(
                sql: "INSERT OR REPLACE INTO locations (id, address, module, module_name, file_offset, offset, lines_blob) VALUES (?, ?, ?, ?, ?, ?, ?)")
        ).execute(
            .int(l.id), .unsigned(l.address), .optional(l.moduleID), .optional(l.moduleName), .optional(l.fileOffset.map(sqlInt)),
            .optional(l.offset.map(sqlInt)), .blob(PackedRows.encode(lines: lines)))
    }

    /// The node for `location` called from `parent`, added to this batch's new nodes if it is new.
    /// `parentIsNew`: the parent was created just now, so it has no children to look up.
    private func node(parent: Int64, location: Int64, parentIsNew: Bool) -> Int64 {
        if nodeCount < Int64(UInt32.max), let key = Self.packedKey(parent: parent, location: location) {
            if !parentIsNew, let n = nodes.get(key) { return Int64(n) }
            nodeCount += 1
            nodes.set(key, UInt32(truncatingIfNeeded: nodeCount))
            undo.nodeKeys.append(key)
        } else {
            let key = NodeKey(parent: parent, location: location)
            if !parentIsNew, let n = wideNodes[key] { return n }
            nodeCount += 1
            wideNodes[key] = nodeCount
            undo.wideKeys.append(key)
        }
        newNodes.append((parent, location))
        return nodeCount
    }

    /// (parent, location) in one word, when both fit (they always do in practice), else nil. Location ids
    /// start at 1, so a packed key is never 0 (IntMap's empty marker).
    private static func packedKey(parent: Int64, location: Int64) -> UInt64? {
        parent < 1 << 40 && location > 0 && location < 1 << 24 ? UInt64(parent) << 24 | UInt64(location) : nil
    }

    /// Once a stack leaves the tree, every node below is new and its key known: parent ids count up from
    /// `first`. Touching all their slots first overlaps the cache misses that the inserts then pay one by
    /// one (131k deep stacks: about 3M new nodes in a table of tens of megabytes).
    private var chainKeys: [UInt64] = []
    private func touchChain(after first: Int64, _ locations: ArraySlice<Int64>) {
        guard locations.count > 1 else { return }
        chainKeys.removeAll(keepingCapacity: true)
        var parent = first
        for location in locations {
            guard let key = Self.packedKey(parent: parent, location: location) else { break }
            chainKeys.append(key)
            parent += 1
        }
        chainKeys.withUnsafeBufferPointer { _ = nodes.touch($0) }
    }

    /// The previous stack's path from the root (locations and their nodes): consecutive stacks usually
    /// share their callers, and walking the shared part again would cost a hash lookup per frame.
    private var lastPath: [Int64] = []
    private var lastNodes: [Int64] = []

    /// Orders leaf-first location lists by their root-first paths.
    private static func rootFirstLess(_ a: [Int64], _ b: [Int64]) -> Bool {
        var i = a.count - 1, j = b.count - 1
        while i >= 0 && j >= 0 {
            if a[i] != b[j] { return a[i] < b[j] }
            i -= 1
            j -= 1
        }
        return a.count < b.count
    }

    private func writeStack(_ s: StackRecord, _ db: Database) throws {
        let path = Array(s.locations.reversed())
        var shared = 0
        while shared < path.count && shared < lastPath.count && path[shared] == lastPath[shared] { shared += 1 }
        lastNodes.removeSubrange(shared...)
        var node: Int64 = shared > 0 ? lastNodes[shared - 1] : 0
        var isNew = false
        for i in shared..<path.count {
            let before = nodeCount
            node = self.node(parent: node, location: path[i], parentIsNew: isNew)
            let created = nodeCount != before
            if created && !isNew { touchChain(after: node, path[(i + 1)...]) }
            isNew = created
            lastNodes.append(node)
        }
        lastPath = path
        try FastStatement(
            db.cachedStatement(
                sql: "INSERT OR REPLACE INTO stacks (id, space, origin, leaf, depth, truncated, incomplete, task_pid, task_comm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        ).execute(
            .int(Int64(s.id)), .int(Int64(s.space)), .text(s.origin.rawValue), .int(node), .int(Int64(s.locations.count)), .bool(s.truncated),
            .bool(s.mayBeIncomplete), .optional(s.taskPid.map { Int64($0) }), .optional(s.taskComm))
    }

    // MARK: live-block checkpoints

    private func writeLive(_ key: LiveTableKey, _ changes: inout LiveChanges, _ db: Database) throws {
        // Sorted once, in place; each chunk is then a contiguous slice (no copies per chunk).
        AddressSort.sort(&changes.puts)
        let puts = changes.puts
        let removes = AddressSort.sortedUnique(changes.removes)
        var pi = 0, ri = 0
        let insert = FastStatement(
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO live_chunks (space, kind, chunk, seq, base, data) VALUES (?, ?, ?, ?, ?, ?)"))
        while pi < puts.count || ri < removes.count {
            let c = min(
                pi < puts.count ? LiveCheckpoint.chunk(of: puts[pi].address) : .max, ri < removes.count ? LiveCheckpoint.chunk(of: removes[ri]) : .max)
            let p0 = pi, r0 = ri
            while pi < puts.count && LiveCheckpoint.chunk(of: puts[pi].address) == c { pi += 1 }
            while ri < removes.count && LiveCheckpoint.chunk(of: removes[ri]) == c { ri += 1 }
            let ck = ChunkKey(space: key.space, kind: key.kind, chunk: c)
            if undo.chunks[ck] == nil { undo.chunks[ck] = .some(chunks[ck]) }
            var state = chunks[ck] ?? ChunkState()
            let isBase = state.nextSeq == 0
            let data = LiveCheckpoint.encode(puts: puts[p0..<pi], removes: isBase ? [] : removes[r0..<ri])
            try insert.execute(.int(Int64(key.space)), .text(key.kind.rawValue), .unsigned(c), .int(state.nextSeq), .bool(isBase), .blob(data))
            state.nextSeq += 1
            if isBase {
                state.baseBytes = data.count
            } else {
                state.deltaBytes += data.count
                state.deltas += 1
            }
            // Merge once the deltas outweigh the base eight times: what a chunk holds stays within about
            // nine times its live size, and reading its deltas is one fold (LiveCheckpoint.Fold). A cut that
            // stopped at its batch limit takes blocks in hash order, so every chunk being filled gets a
            // small delta per cut; merging as soon as deltas outweighed the base rewrote such chunks about
            // twice over (8 % of a 10M-block run's samples), and at three times the writer's CPU at 10M
            // live blocks was 3.4-3.9 s against 2.9-3.1 s.
            if state.deltas >= 32 || state.deltaBytes > 8 * max(state.baseBytes, 4096) { try compact(ck, &state, db) }
            chunks[ck] = state
        }
    }

    private func compact(_ ck: ChunkKey, _ state: inout ChunkState, _ db: Database) throws {
        let args: StatementArguments = [Int64(ck.space), ck.kind.rawValue, sqlInt(ck.chunk)]
        var fold = LiveCheckpoint.Fold()
        for row in try Row.fetchAll(
            db, sql: "SELECT base, data FROM live_chunks WHERE space = ? AND kind = ? AND chunk = ? ORDER BY seq", arguments: args)
        {
            let base: Bool = try row.decode(atIndex: 0)
            let data: Data = try row.decode(atIndex: 1)
            let (p, r) = try LiveCheckpoint.decode([UInt8](data))
            fold.add(base: base, puts: p, removes: r)
        }
        let blocks = fold.blocks()
        try db.execute(sql: "DELETE FROM live_chunks WHERE space = ? AND kind = ? AND chunk = ?", arguments: args)
        let data = LiveCheckpoint.encode(puts: blocks, removes: [])
        try db.execute(
            sql: "INSERT INTO live_chunks (space, kind, chunk, seq, base, data) VALUES (?, ?, ?, ?, 1, ?)",
            arguments: [Int64(ck.space), ck.kind.rawValue, sqlInt(ck.chunk), state.nextSeq, Data(data)])
        state.nextSeq += 1
        state.baseBytes = data.count
        state.deltaBytes = 0
        state.deltas = 0
        compactions += 1
    }
}
