import Vocabulary

/// The packed columns of the session besides live blocks (see `LiveCheckpoint`): an interval's
/// per-stack history and per-kind totals, a stack's lifetime histogram, and a location's lines. One
/// place encodes and decodes each, with `ByteWriter`/`ByteReader`.
public enum PackedRows {
    // MARK: history

    public static func encode(history: [HistoryPoint]) -> [UInt8] {
        let sorted = history.sorted { ($0.stackID, $0.kind.slot) < ($1.stackID, $1.kind.slot) }
        var w = ByteWriter(capacity: sorted.count * 6)
        w.varint(UInt64(sorted.count))
        var stack: UInt64 = 0
        for p in sorted {
            w.varint(UInt64(p.stackID) - stack)
            stack = UInt64(p.stackID)
            w.byte(UInt8(p.kind.slot))
            w.varint(p.bytes)
            w.varint(p.blocks)
        }
        return w.bytes
    }

    public static func decodeHistory(_ bytes: [UInt8]) throws(BlobError) -> [HistoryPoint] {
        var r = ByteReader(bytes)
        let n = try r.count(minBytes: 4)
        var out: [HistoryPoint] = []
        out.reserveCapacity(n)
        var stack: UInt64 = 0
        for _ in 0..<n {
            stack &+= try r.varint()
            guard let sid = SessionStackID(exactly: stack) else { throw BlobError("stack id \(stack) out of range") }
            let slot = try r.byte()
            guard let kind = BlockKind(slot: Int(slot)) else { throw BlobError("unknown kind \(slot)") }
            out.append(HistoryPoint(stackID: sid, kind: kind, bytes: try r.varint(), blocks: try r.varint()))
        }
        guard r.atEnd else { throw BlobError("bytes after a history row") }
        return out
    }

    // MARK: per-kind totals

    public static func encode(kinds: [BlockKind: KindTotal]) -> [UInt8] {
        var w = ByteWriter()
        let sorted = kinds.sorted { $0.key.slot < $1.key.slot }
        w.varint(UInt64(sorted.count))
        for (k, t) in sorted {
            w.byte(UInt8(k.slot))
            w.varint(t.bytes)
            w.varint(t.blocks)
        }
        return w.bytes
    }

    public static func decodeKinds(_ bytes: [UInt8]) throws(BlobError) -> [BlockKind: KindTotal] {
        var r = ByteReader(bytes)
        var out: [BlockKind: KindTotal] = [:]
        for _ in 0..<(try r.count(minBytes: 3)) {
            let slot = try r.byte()
            guard let kind = BlockKind(slot: Int(slot)) else { throw BlobError("unknown kind \(slot)") }
            out[kind] = KindTotal(bytes: try r.varint(), blocks: try r.varint())
        }
        guard r.atEnd else { throw BlobError("bytes after per-kind totals") }
        return out
    }

    // MARK: lifetimes

    public static func encode(lifetimes h: LifetimeHistogram) -> [UInt8] {
        var w = ByteWriter()
        w.varint(UInt64(h.counts.count))
        for i in h.counts.indices {
            w.varint(h.counts[i])
            w.varint(h.bytes[i])
        }
        return w.bytes
    }

    public static func decodeLifetimes(_ bytes: [UInt8]) throws(BlobError) -> LifetimeHistogram {
        var r = ByteReader(bytes)
        var h = LifetimeHistogram()
        let n = try r.count(minBytes: 2)
        guard n == h.counts.count else { throw BlobError("lifetime histogram of \(n) buckets, expected \(h.counts.count)") }
        for i in 0..<n {
            h.counts[i] = try r.varint()
            h.bytes[i] = try r.varint()
        }
        guard r.atEnd else { throw BlobError("bytes after a lifetime histogram") }
        return h
    }

    // MARK: location lines

    /// A location's lines, innermost inlined call first, the function the code physically sits in
    /// last. Strings are ids into the session's string table (0: none).
    public struct Line: Sendable, Equatable, Hashable {
        public var function: Int64
        public var systemName: Int64
        public var file: Int64
        public var line: Int?

        public init(function: Int64, systemName: Int64, file: Int64, line: Int?) {
            self.function = function
            self.systemName = systemName
            self.file = file
            self.line = line
        }
    }

    public static func encode(lines: [Line]) -> [UInt8] {
        var w = ByteWriter()
        w.varint(UInt64(lines.count))
        for l in lines {
            w.varint(UInt64(bitPattern: l.function))
            w.varint(UInt64(bitPattern: l.systemName))
            w.varint(UInt64(bitPattern: l.file))
            w.varint(l.line.map { UInt64(max($0, 0)) + 1 } ?? 0)
        }
        return w.bytes
    }

    public static func decodeLines(_ bytes: [UInt8]) throws(BlobError) -> [Line] {
        var r = ByteReader(bytes)
        var out: [Line] = []
        for _ in 0..<(try r.count(minBytes: 4)) {
            let f = Int64(bitPattern: try r.varint()), s = Int64(bitPattern: try r.varint()), file = Int64(bitPattern: try r.varint())
            let line = try r.varint()
            guard line <= UInt64(Int32.max) else { throw BlobError("line \(line) out of range") }
            out.append(Line(function: f, systemName: s, file: file, line: line == 0 ? nil : Int(line - 1)))
        }
        guard r.atEnd else { throw BlobError("bytes after location lines") }
        return out
    }
}

extension PackedRows {
    // MARK: stack tree

    /// Nodes `first ..< first + n` as (first - parent, location) varints: a parent always precedes its children.
    public static func encode(nodes: [(parent: Int64, location: Int64)], first: Int64) -> [UInt8] {
        var w = ByteWriter(capacity: nodes.count * 4)
        w.varint(UInt64(nodes.count))
        for (i, n) in nodes.enumerated() {
            w.varint(UInt64(first + Int64(i) - n.parent))
            w.varint(UInt64(bitPattern: n.location))
        }
        return w.bytes
    }

    /// Appends the nodes of one row to `parents`/`locations` (indexed by node id; index 0 is the root).
    public static func decodeNodes(_ bytes: [UInt8], first: Int64, into parents: inout [Int32], _ locations: inout [Int32]) throws(BlobError) {
        guard first == Int64(parents.count) else { throw BlobError("stack tree rows out of order at node \(first)") }
        var r = ByteReader(bytes)
        let n = try r.count(minBytes: 2)
        for i in 0..<n {
            let id = first + Int64(i)
            let back = try r.varint()
            let location = try r.varint()
            guard back >= 1, back <= UInt64(id), location <= UInt64(Int32.max), id < Int64(Int32.max) else {
                throw BlobError("stack tree node \(id) points outside the tree")
            }
            parents.append(Int32(id - Int64(back)))
            locations.append(Int32(location))
        }
        guard r.atEnd else { throw BlobError("bytes after stack tree nodes") }
    }
}
