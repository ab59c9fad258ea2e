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
        var kept: [LiveBlock] = []
        kept.reserveCapacity(base.count + puts.count)
        var ri = 0
        for b in base {
            while ri < removes.count && removes[ri] < b.address { ri += 1 }
            if ri < removes.count && removes[ri] == b.address { continue }
            kept.append(b)
        }
        if puts.isEmpty { return kept }
        var out: [LiveBlock] = []
        out.reserveCapacity(kept.count + puts.count)
        var i = 0, j = 0
        while i < kept.count || j < puts.count {
            if j == puts.count || (i < kept.count && kept[i].address < puts[j].address) {
                out.append(kept[i])
                i += 1
            } else {
                if i < kept.count && kept[i].address == puts[j].address { i += 1 }
                out.append(puts[j])
                j += 1
            }
        }
        return out
    }
}
