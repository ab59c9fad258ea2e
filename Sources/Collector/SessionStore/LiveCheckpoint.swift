import Vocabulary

/// The packed form of live blocks in the session (`live_chunks`). Live blocks are checkpointed per
/// space, kind and 4 MiB address window ("chunk"). A chunk is one *base* row plus the *delta* rows of the
/// intervals since; each row holds blocks put (sorted by address) and addresses removed (sorted). When a
/// chunk's deltas outgrow its base, the writer merges them into a new base, so what is written per
/// interval is proportional to what changed, and a chunk is at most a few times its live size.
///
/// A block takes about 6 to 10 bytes: address delta, size, stack-id delta, time delta (µs), and one byte
/// of allocator function and backing.
public enum LiveCheckpoint {
    public static let chunkShift: UInt64 = 22

    @inline(__always) public static func chunk(of address: UInt64) -> UInt64 { address >> chunkShift }

    public static func encode<P: Collection<LiveBlock>, R: Collection<UInt64>>(puts: P, removes: R) -> [UInt8] {
        var w = ByteWriter(capacity: puts.count * 8 + removes.count * 2 + 4)
        w.varint(UInt64(puts.count))
        var address: UInt64 = 0, stack: UInt64 = 0, time: UInt64 = 0
        for b in puts {
            w.varint(b.address &- address)
            address = b.address
            w.varint(b.size)
            w.delta(from: stack, to: UInt64(b.stackID))
            stack = UInt64(b.stackID)
            let t = b.timeNs / 1000
            w.delta(from: time, to: t)
            time = t
            let backing: UInt8
            switch b.backing {
            case nil: backing = 0
            case .anonymous?: backing = 1
            case .file?: backing = 2
            }
            w.byte(b.function.code & 0x1f | backing << 5)
        }
        w.varint(UInt64(removes.count))
        address = 0
        for a in removes {
            w.varint(a &- address)
            address = a
        }
        return w.bytes
    }

    /// Decodes a row; throws on anything out of order or out of bounds.
    public static func decode(_ bytes: [UInt8]) throws(BlobError) -> (puts: [LiveBlock], removes: [UInt64]) {
        var r = ByteReader(bytes)
        let n = try r.count(minBytes: 5)
        var puts: [LiveBlock] = []
        puts.reserveCapacity(n)
        var address: UInt64 = 0, stack: UInt64 = 0, time: UInt64 = 0
        for i in 0..<n {
            let d = try r.varint()
            guard i == 0 || d > 0, address.addingReportingOverflow(d).overflow == false else {
                throw BlobError("live blocks out of address order")
            }
            address += d
            let size = try r.varint()
            stack = try r.delta(from: stack)
            guard let sid = SessionStackID(exactly: stack) else { throw BlobError("stack id \(stack) out of range") }
            time = try r.delta(from: time)
            let flags = try r.byte()
            let backing: Backing?
            switch flags >> 5 {
            case 0: backing = nil
            case 1: backing = .anonymous
            case 2: backing = .file
            default: throw BlobError("unknown backing \(flags >> 5)")
            }
            puts.append(
                LiveBlock(
                    address: address, size: size, stackID: sid, timeNs: time &* 1000, function: AllocFunction(code: flags & 0x1f),
                    backing: backing))
        }
        let m = try r.count()
        var removes: [UInt64] = []
        removes.reserveCapacity(m)
        address = 0
        for i in 0..<m {
            let d = try r.varint()
            guard i == 0 || d > 0, address.addingReportingOverflow(d).overflow == false else {
                throw BlobError("removed addresses out of order")
            }
            address += d
            removes.append(address)
        }
        guard r.atEnd else { throw BlobError("\(r.remaining) bytes after a live-block row") }
        return (puts, removes)
    }

    /// Applies a delta to a base, all sorted by address: removes first, then puts (which replace).
    public static func apply(puts: [LiveBlock], removes: [UInt64], to base: [LiveBlock]) -> [LiveBlock] {
        var fold = Fold()
        fold.add(base: true, puts: base, removes: [])
        fold.add(base: false, puts: puts, removes: removes)
        return fold.blocks()
    }

    /// One chunk's rows folded in the order they were written (a base, then deltas): the live blocks that
    /// applying each delta in turn to the base gives. The deltas are first combined with each other, in
    /// pairs, and the result merged into the base once: applied one after another, each delta copied the
    /// whole chunk again, and a chunk that waited for 32 deltas before its compaction was copied 32 times.
    public struct Fold {
        /// A delta's effect on one address: its block put there, or removed.
        private struct Op {
            var block: LiveBlock
            var put: Bool
        }

        private var base: [LiveBlock] = []
        private var deltas: [[Op]] = []

        public init() {}

        /// The next row: a base replaces all that came before it. `puts` and `removes` in strictly
        /// increasing address order, as `decode` gives them.
        public mutating func add(base isBase: Bool, puts: [LiveBlock], removes: [UInt64]) {
            if isBase {
                base = puts
                deltas.removeAll()
            } else {
                deltas.append(Self.ops(puts: puts, removes: removes))
            }
        }

        /// The live blocks, sorted by address.
        public func blocks() -> [LiveBlock] {
            var level = deltas
            while level.count > 1 {
                var next: [[Op]] = []
                next.reserveCapacity((level.count + 1) / 2)
                for i in stride(from: 0, to: level.count, by: 2) {
                    next.append(i + 1 < level.count ? Self.compose(level[i], then: level[i + 1]) : level[i])
                }
                level = next
            }
            guard let ops = level.first else { return base }
            var out: [LiveBlock] = []
            out.reserveCapacity(base.count + ops.count)
            var i = 0, j = 0
            while i < base.count || j < ops.count {
                if j == ops.count || (i < base.count && base[i].address < ops[j].block.address) {
                    out.append(base[i])
                    i += 1
                } else {
                    if i < base.count && base[i].address == ops[j].block.address { i += 1 }
                    if ops[j].put { out.append(ops[j].block) }
                    j += 1
                }
            }
            return out
        }

        /// One delta as one op per address: a put there replaces whatever was, so it outranks a remove.
        private static func ops(puts: [LiveBlock], removes: [UInt64]) -> [Op] {
            var out: [Op] = []
            out.reserveCapacity(puts.count + removes.count)
            var i = 0, j = 0
            while i < puts.count || j < removes.count {
                if j == removes.count || (i < puts.count && puts[i].address <= removes[j]) {
                    if j < removes.count && puts[i].address == removes[j] { j += 1 }
                    out.append(Op(block: puts[i], put: true))
                    i += 1
                } else {
                    out.append(Op(block: LiveBlock(address: removes[j], size: 0, stackID: 0, timeNs: 0, function: .malloc), put: false))
                    j += 1
                }
            }
            return out
        }

        /// Two deltas as one: where both touch an address, the later one's op is what holds.
        private static func compose(_ earlier: [Op], then later: [Op]) -> [Op] {
            var out: [Op] = []
            out.reserveCapacity(earlier.count + later.count)
            var i = 0, j = 0
            while i < earlier.count || j < later.count {
                if j == later.count || (i < earlier.count && earlier[i].block.address < later[j].block.address) {
                    out.append(earlier[i])
                    i += 1
                } else {
                    if i < earlier.count && earlier[i].block.address == later[j].block.address { i += 1 }
                    out.append(later[j])
                    j += 1
                }
            }
            return out
        }
    }
}
