/// LEB128 varints and zigzag signed deltas, the encoding of every packed blob in a session (live-block
/// checkpoints, interval history, lifetime histograms, location lines). Written by hand: it is a few
/// lines, and the reader must be bounds-checked against files anyone may have written.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    @inline(__always) public mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inline(__always) public mutating func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    /// The signed difference `to - from` of two unsigned values, zigzag encoded.
    @inline(__always) public mutating func delta(from: UInt64, to: UInt64) { zigzag(Int64(bitPattern: to &- from)) }

    @inline(__always) public mutating func byte(_ b: UInt8) { bytes.append(b) }

    public mutating func string(_ s: String) {
        let u = Array(s.utf8)
        varint(UInt64(u.count))
        bytes.append(contentsOf: u)
    }
}

/// Why a packed blob could not be read: always a corrupt session for the user.
public struct BlobError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads what `ByteWriter` wrote, throwing on anything that runs past the end or overflows.
public struct ByteReader {
    private let bytes: [UInt8]
    public private(set) var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var atEnd: Bool { position >= bytes.count }
    public var remaining: Int { bytes.count - position }

    @inline(__always) public mutating func varint() throws(BlobError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw BlobError("varint runs past the end of a blob") }
            let b = bytes[position]
            position += 1
            if shift == 63 && b > 1 { throw BlobError("varint overflows 64 bits") }
            v |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }

    @inline(__always) public mutating func zigzag() throws(BlobError) -> Int64 {
        let u = try varint()
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    /// `from` plus a zigzag delta, wrapping like the writer's subtraction did.
    @inline(__always) public mutating func delta(from: UInt64) throws(BlobError) -> UInt64 {
        from &+ UInt64(bitPattern: try zigzag())
    }

    @inline(__always) public mutating func byte() throws(BlobError) -> UInt8 {
        guard position < bytes.count else { throw BlobError("blob ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    /// A count of items that each take at least `minBytes`: refused when the blob cannot hold that many,
    /// so a corrupt count cannot make a reader allocate gigabytes.
    public mutating func count(minBytes: Int = 1) throws(BlobError) -> Int {
        let n = try varint()
        guard n <= UInt64(remaining / max(minBytes, 1)) else { throw BlobError("a count of \(n) items exceeds the blob") }
        return Int(n)
    }

    public mutating func string() throws(BlobError) -> String {
        let n = try count()
        defer { position += n }
        return String(decoding: bytes[position..<position + n], as: UTF8.self)
    }
}
