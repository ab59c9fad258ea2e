import Foundation
import GRDB
import Vocabulary

/// Every stack of a session, held the way the session stores them: a tree of (parent, location) nodes
/// in two integer arrays, and each distinct location's frames once. A stack is its leaf node; its
/// frames are the locations on the way to the root, innermost first, inlined calls expanded. Reading all
/// stacks of a 131k-stack session this way takes megabytes, where a frame list per stack took gigabytes.
public final class StackCatalog {
    /// A stack's own facts, without frames.
    public struct Stack: Sendable, Equatable {
        public var id: SessionStackID
        public var space: SpaceID
        public var origin: StackOrigin
        public var truncated: Bool
        public var mayBeIncomplete: Bool
        public var taskPid: Int32?
        public var taskComm: String?
        /// The innermost frame's node; 0 for a stack without frames.
        public var leaf: Int32
    }

    /// Indexed by node id; node 0 is the root.
    public private(set) var parents: [Int32] = [0]
    public private(set) var nodeLocations: [Int32] = [0]
    /// Indexed by location id; each location's frames, inlined calls first.
    public private(set) var locationFrames: [[FrameRow]] = [[]]
    public private(set) var stacks = Stacks(denseLimit: 1 << 24)

    /// Strings by id, kept so that locations read later can name the earlier ones.
    private var strings: [Int64: String] = [:]
    /// The highest string and stack ids read so far (ids only grow: the writer numbers them as it meets them).
    private var lastStringID: Int64 = 0
    private var lastStackID: Int64 = -1

    /// A catalog with no stacks yet, for `extend`.
    init() {}

    init(_ db: Database) throws {
        try extend(db)
    }

    /// Reads what the session added since this catalog last read it: the strings, locations,
    /// stack-tree rows and stacks after the last ones held (each table only grows, by increasing ids),
    /// so a live view keeps its catalog between refreshes. On a failure the catalog is left as it was.
    func extend(_ db: Database) throws {
        let held = (lastStringID, locationFrames.count, parents.count, lastStackID)
        var added: [SessionStackID] = []
        do {
            try readRows(db, &added)
        } catch {
            strings = strings.filter { $0.key <= held.0 }
            lastStringID = held.0
            locationFrames.removeSubrange(held.1...)
            parents.removeSubrange(held.2...)
            nodeLocations.removeSubrange(held.2...)
            for id in added { stacks[id] = nil }
            lastStackID = held.3
            throw error
        }
    }

    private func readRows(_ db: Database, _ added: inout [SessionStackID]) throws {
        let held = nodeLocations.count
        var modules: [Int64: (path: String, buildID: String)] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT id, path, build_id FROM modules") {
            modules[try r.decode(atIndex: 0)] = (try r.decode(atIndex: 1), try r.decode(atIndex: 2))
        }
        for r in try Row.fetchAll(db, sql: "SELECT id, text FROM strings WHERE id > ? ORDER BY id", arguments: [lastStringID]) {
            let id: Int64 = try r.decode(atIndex: 0)
            strings[id] = try r.decode(atIndex: 1)
            lastStringID = id
        }
        func string(_ id: Int64) throws -> String? {
            if id == 0 { return nil }
            guard let s = strings[id] else { throw BlobError("string \(id) is missing") }
            return s
        }
        for r in try Row.fetchAll(
            db, sql: "SELECT id, address, module, module_name, file_offset, offset, lines_blob FROM locations WHERE id >= ? ORDER BY id",
            arguments: [locationFrames.count])
        {
            let id: Int64 = try r.decode(atIndex: 0)
            guard id == Int64(locationFrames.count) else { throw BlobError("location ids are not dense at \(id)") }
            let address: Int64 = try r.decode(atIndex: 1)
            let moduleID: Int64? = try r.decode(atIndex: 2)
            let moduleName: String? = try r.decode(atIndex: 3)
            let fileOffset: Int64? = try r.decode(atIndex: 4)
            let offset: Int64? = try r.decode(atIndex: 5)
            let blob: Data = try r.decode(atIndex: 6)
            let module = moduleID.flatMap { modules[$0] }
            // The writer puts a module's row in the transaction of the first location that names it.
            if let m = moduleID, module == nil { throw BlobError("location \(id) names module \(m), which is missing") }
            let path = moduleName ?? module?.path
            let buildID = module.flatMap { $0.buildID.isEmpty ? nil : $0.buildID }
            let lines = try PackedRows.decodeLines([UInt8](blob))
            if lines.isEmpty {
                locationFrames.append([
                    FrameRow(address: sqlUInt(address), offset: offset.map(sqlUInt), module: path, buildID: buildID, fileOffset: fileOffset.map(sqlUInt))
                ])
                continue
            }
            var frames: [FrameRow] = []
            for (i, l) in lines.enumerated() {
                let last = i == lines.count - 1
                frames.append(
                    FrameRow(
                        address: sqlUInt(address), function: try string(l.function), systemName: try string(l.systemName),
                        offset: last ? offset.map(sqlUInt) : nil, module: path, buildID: buildID, fileOffset: fileOffset.map(sqlUInt),
                        file: try string(l.file), line: l.line, inlined: !last))
            }
            locationFrames.append(frames)
        }
        // The tree rows and stacks are the bulk of what a refresh reads (a new stack brings ~20 new
        // nodes): read through SQLite directly rather than a GRDB `Row` per row.
        try FastRows(db.cachedStatement(sql: "SELECT first, data FROM stack_tree WHERE first >= ? ORDER BY first"), Int64(parents.count)).forEach { r in
            try PackedRows.decodeNodes([UInt8](try r.blob(1)), first: try r.int(0), into: &parents, &nodeLocations)
        }
        for l in nodeLocations[held...] where Int(l) >= locationFrames.count { throw BlobError("stack tree names location \(l), which is missing") }
        try FastRows(
            db.cachedStatement(sql: "SELECT id, space, origin, leaf, truncated, incomplete, task_pid, task_comm FROM stacks WHERE id > ? ORDER BY id"),
            lastStackID
        ).forEach { r in
            let rawID = try r.int(0)
            guard let id = SessionStackID(exactly: rawID) else { throw BlobError("stack id \(rawID) out of range") }
            let originText = try r.text(2) ?? ""
            guard let origin = StackOrigin(rawValue: originText) else { throw BlobError("unknown stack origin '\(originText)'") }
            let leaf = try r.int(3)
            guard leaf >= 0, leaf < Int64(parents.count) else { throw BlobError("stack \(id) names node \(leaf), which is missing") }
            stacks[id] = Stack(
                id: id, space: SpaceID(truncatingIfNeeded: try r.int(1)), origin: origin, truncated: try r.bool(4), mayBeIncomplete: try r.bool(5),
                taskPid: try r.optionalInt(6).map { Int32(truncatingIfNeeded: $0) }, taskComm: try r.text(7), leaf: Int32(leaf))
            added.append(id)
            lastStackID = max(lastStackID, rawID)
        }
    }

    /// Calls `body` with each frame of a stack, innermost first, until it returns false.
    public func forEachFrame(of id: SessionStackID, _ body: (FrameRow) -> Bool) {
        guard let s = stacks[id] else { return }
        var node = Int(s.leaf)
        while node != 0 {
            for f in locationFrames[Int(nodeLocations[node])] where !body(f) { return }
            node = Int(parents[node])
        }
    }

    /// A stack's frames, innermost first.
    public func frames(of id: SessionStackID) -> [FrameRow] {
        var out: [FrameRow] = []
        forEachFrame(of: id) {
            out.append($0)
            return true
        }
        return out
    }

    /// A stack with its frames, as the reports show it.
    public func row(_ id: SessionStackID) -> StackRow? {
        guard let s = stacks[id] else { return nil }
        return StackRow(
            id: id, space: s.space, origin: s.origin, truncated: s.truncated, mayBeIncomplete: s.mayBeIncomplete, taskPid: s.taskPid,
            taskComm: s.taskComm, frames: frames(of: id))
    }

    /// For every node, whether some frame on its way to the root satisfies `test` ("does this stack pass
    /// through …", for every stack at once), or with `every`, whether every frame does; `test` is
    /// evaluated once per location. `nodes` and `locations` hold the answers per node and per location
    /// for the catalog as it stood at the last call (empty at first) and are extended to the catalog as
    /// it stands: after an `extend`, only the locations and nodes it added are decided.
    public func decide(_ test: (FrameRow) -> Bool, every: Bool, nodes: inout [Bool], locations: inout [Bool]) {
        // The root has no frame: none satisfies the test, and all of none do.
        if nodes.isEmpty { nodes = [every] }
        guard nodes.count < parents.count else { return }
        for l in locations.count..<locationFrames.count {
            locations.append(every ? locationFrames[l].allSatisfy(test) : locationFrames[l].contains(where: test))
        }
        // A parent's id is always below its children's: one pass in id order sees parents first. Read
        // through buffers: a refresh decides hundreds of thousands of new nodes per rule, and each read of
        // the catalog's arrays through `self` was an exclusivity check.
        let first = nodes.count
        parents.withUnsafeBufferPointer { parents in
            nodeLocations.withUnsafeBufferPointer { nodeLocations in
                locations.withUnsafeBufferPointer { locations in
                    for n in first..<parents.count {
                        let here = locations[Int(nodeLocations[n])], above = nodes[Int(parents[n])]
                        nodes.append(every ? here && above : here || above)
                    }
                }
            }
        }
    }

    /// The innermost frame of a stack.
    public func innermost(of id: SessionStackID) -> FrameRow? {
        guard let s = stacks[id], s.leaf != 0 else { return nil }
        return locationFrames[Int(nodeLocations[Int(s.leaf)])].first
    }
}
