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
    public private(set) var stacks: [SessionStackID: Stack] = [:]

    init(_ db: Database) throws {
        var modules: [Int64: (path: String, buildID: String)] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT id, path, build_id FROM modules") {
            modules[try r.decode(atIndex: 0)] = (try r.decode(atIndex: 1), try r.decode(atIndex: 2))
        }
        var strings: [Int64: String] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT id, text FROM strings") { strings[try r.decode(atIndex: 0)] = try r.decode(atIndex: 1) }
        func string(_ id: Int64) throws -> String? {
            if id == 0 { return nil }
            guard let s = strings[id] else { throw BlobError("string \(id) is missing") }
            return s
        }
        for r in try Row.fetchAll(
            db, sql: "SELECT id, address, module, module_name, file_offset, offset, lines_blob FROM locations ORDER BY id")
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
        for r in try Row.fetchAll(db, sql: "SELECT first, data FROM stack_tree ORDER BY first") {
            let blob: Data = try r.decode(atIndex: 1)
            try PackedRows.decodeNodes([UInt8](blob), first: try r.decode(atIndex: 0), into: &parents, &nodeLocations)
        }
        for l in nodeLocations where Int(l) >= locationFrames.count { throw BlobError("stack tree names location \(l), which is missing") }
        let cursor = try Row.fetchCursor(db, sql: "SELECT id, space, origin, leaf, truncated, incomplete, task_pid, task_comm FROM stacks")
        while let r = try cursor.next() {
            let rawID: Int64 = try r.decode(atIndex: 0)
            guard let id = SessionStackID(exactly: rawID) else { throw BlobError("stack id \(rawID) out of range") }
            let space: Int64 = try r.decode(atIndex: 1)
            let originText: String = try r.decode(atIndex: 2)
            guard let origin = StackOrigin(rawValue: originText) else { throw BlobError("unknown stack origin '\(originText)'") }
            let leaf: Int64 = try r.decode(atIndex: 3)
            guard leaf >= 0, leaf < Int64(parents.count) else { throw BlobError("stack \(id) names node \(leaf), which is missing") }
            let pid: Int64? = try r.decode(atIndex: 6)
            stacks[id] = Stack(
                id: id, space: SpaceID(truncatingIfNeeded: space), origin: origin, truncated: try r.decode(atIndex: 4),
                mayBeIncomplete: try r.decode(atIndex: 5), taskPid: pid.map { Int32(truncatingIfNeeded: $0) }, taskComm: try r.decode(atIndex: 7),
                leaf: Int32(leaf))
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

    /// For every node, whether some frame on its way to the root satisfies `test` (evaluated once per
    /// location): "does this stack pass through …" for every stack at once.
    public func nodesReaching(_ test: (FrameRow) -> Bool) -> [Bool] {
        let hit = locationFrames.map { $0.contains(where: test) }
        var out = [Bool](repeating: false, count: parents.count)
        // A parent's id is always below its children's: one pass in id order sees parents first.
        for n in 1..<max(parents.count, 1) { out[n] = hit[Int(nodeLocations[n])] || out[Int(parents[n])] }
        return out
    }

    /// For every node, whether every frame on its way to the root satisfies `test`.
    public func nodesAll(_ test: (FrameRow) -> Bool) -> [Bool] {
        let ok = locationFrames.map { $0.allSatisfy(test) }
        var out = [Bool](repeating: true, count: parents.count)
        for n in 1..<max(parents.count, 1) { out[n] = ok[Int(nodeLocations[n])] && out[Int(parents[n])] }
        return out
    }

    /// The innermost frame of a stack.
    public func innermost(of id: SessionStackID) -> FrameRow? {
        guard let s = stacks[id], s.leaf != 0 else { return nil }
        return locationFrames[Int(nodeLocations[Int(s.leaf)])].first
    }
}
