import Foundation
import GRDB
import Vocabulary

/// Turns the stored form of stacks (a leaf node of the stack tree, nodes pointing at interned
/// locations and strings) back into symbolized frames, innermost first, inlined calls expanded. Reads
/// what it needs once and caches it, or everything at once (`preload`) for readers of all stacks.
struct FrameResolver {
    private var modules: [Int64: ModuleRow] = [:]
    private var strings: [Int64: String] = [:]
    private var locations: [Int64: [FrameRow]] = [:]
    private var nodes: [Int64: (parent: Int64, location: Int64)] = [:]
    private let preloaded: Bool

    init(_ db: Database, preload: Bool = false) throws {
        for r in try Row.fetchAll(db, sql: "SELECT id, space, path, build_id, bias, lo, hi, loaded_ns FROM modules") {
            let id: Int64 = try r.decode(atIndex: 0)
            let bias: Int64 = try r.decode(atIndex: 4), lo: Int64 = try r.decode(atIndex: 5), hi: Int64 = try r.decode(atIndex: 6)
            let loaded: Int64 = try r.decode(atIndex: 7), space: Int64 = try r.decode(atIndex: 1)
            modules[id] = ModuleRow(
                id: id, space: SpaceID(truncatingIfNeeded: space), path: try r.decode(atIndex: 2), buildID: try r.decode(atIndex: 3),
                bias: sqlUInt(bias), lo: sqlUInt(lo), hi: sqlUInt(hi), loadedNs: sqlUInt(loaded))
        }
        preloaded = preload
        guard preload else { return }
        for r in try Row.fetchAll(db, sql: "SELECT id, text FROM strings") { strings[try r.decode(atIndex: 0)] = try r.decode(atIndex: 1) }
        let cursor = try Row.fetchCursor(db, sql: "SELECT id, parent, location FROM stack_nodes")
        while let r = try cursor.next() { nodes[try r.decode(atIndex: 0)] = (try r.decode(atIndex: 1), try r.decode(atIndex: 2)) }
        for r in try Row.fetchAll(db, sql: "SELECT id, address, module, module_name, file_offset, offset, lines_blob FROM locations") {
            locations[try r.decode(atIndex: 0)] = try frames(r, db)
        }
    }

    /// A `stacks` row (id, space, origin, leaf, truncated, incomplete, task_pid, task_comm) with its frames.
    mutating func stack(_ r: Row, _ db: Database) throws -> StackRow {
        let rawID: Int64 = try r.decode(atIndex: 0)
        guard let id = SessionStackID(exactly: rawID) else { throw BlobError("stack id \(rawID) out of range") }
        let space: Int64 = try r.decode(atIndex: 1)
        let originText: String = try r.decode(atIndex: 2)
        guard let origin = StackOrigin(rawValue: originText) else { throw BlobError("unknown stack origin '\(originText)'") }
        var frames: [FrameRow] = []
        var node: Int64 = try r.decode(atIndex: 3)
        var steps = 0
        while node != 0 {
            // A cycle in a file anyone may have written must not loop forever.
            steps += 1
            guard steps <= 100_000 else { throw BlobError("stack \(id) does not reach the root of the stack tree") }
            let (parent, location) = try self.node(node, db)
            frames += try self.location(location, db)
            node = parent
        }
        let pid: Int64? = try r.decode(atIndex: 6)
        return StackRow(
            id: id, space: SpaceID(truncatingIfNeeded: space), origin: origin, truncated: try r.decode(atIndex: 4),
            mayBeIncomplete: try r.decode(atIndex: 5), taskPid: pid.map { Int32(truncatingIfNeeded: $0) }, taskComm: try r.decode(atIndex: 7),
            frames: frames)
    }

    private mutating func node(_ id: Int64, _ db: Database) throws -> (Int64, Int64) {
        if let n = nodes[id] { return n }
        guard !preloaded, let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT parent, location FROM stack_nodes WHERE id = ?"), arguments: [id])
        else { throw BlobError("stack tree node \(id) is missing") }
        let n: (Int64, Int64) = (try r.decode(atIndex: 0), try r.decode(atIndex: 1))
        nodes[id] = n
        return n
    }

    private mutating func location(_ id: Int64, _ db: Database) throws -> [FrameRow] {
        if let l = locations[id] { return l }
        guard !preloaded,
            let r = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT id, address, module, module_name, file_offset, offset, lines_blob FROM locations WHERE id = ?"),
                arguments: [id])
        else { throw BlobError("location \(id) is missing") }
        let f = try frames(r, db)
        locations[id] = f
        return f
    }

    private mutating func string(_ id: Int64, _ db: Database) throws -> String? {
        if id == 0 { return nil }
        if let s = strings[id] { return s }
        guard !preloaded, let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT text FROM strings WHERE id = ?"), arguments: [id]) else {
            throw BlobError("string \(id) is missing")
        }
        let s: String = try r.decode(atIndex: 0)
        strings[id] = s
        return s
    }

    /// A location row's frames: one per line, inlined calls first.
    private mutating func frames(_ r: Row, _ db: Database) throws -> [FrameRow] {
        let address: Int64 = try r.decode(atIndex: 1)
        let moduleID: Int64? = try r.decode(atIndex: 2)
        let moduleName: String? = try r.decode(atIndex: 3)
        let fileOffset: Int64? = try r.decode(atIndex: 4)
        let offset: Int64? = try r.decode(atIndex: 5)
        let blob: Data = try r.decode(atIndex: 6)
        let module = moduleID.flatMap { modules[$0] }
        let lines = try PackedRows.decodeLines([UInt8](blob))
        if lines.isEmpty {
            return [
                FrameRow(
                    address: sqlUInt(address), offset: offset.map(sqlUInt), module: moduleName ?? module?.path,
                    buildID: module.flatMap { $0.buildID.isEmpty ? nil : $0.buildID }, fileOffset: fileOffset.map(sqlUInt))
            ]
        }
        var out: [FrameRow] = []
        for (i, l) in lines.enumerated() {
            let last = i == lines.count - 1
            out.append(
                FrameRow(
                    address: sqlUInt(address), function: try string(l.function, db), systemName: try string(l.systemName, db),
                    offset: last ? offset.map(sqlUInt) : nil, module: moduleName ?? module?.path,
                    buildID: module.flatMap { $0.buildID.isEmpty ? nil : $0.buildID }, fileOffset: fileOffset.map(sqlUInt),
                    file: try string(l.file, db), line: l.line, inlined: !last))
        }
        return out
    }
}
