import SessionStore
import Vocabulary

/// The packed blobs of a session (live-block checkpoints, interval history, per-kind totals, lifetime
/// histograms, location lines, stack-tree nodes), decoded directly: the first byte picks the decoder.
/// Besides "throws, never traps", it checks that whatever the reader accepted, the writer can write
/// again and the reader reads back the same (after one round, which normalizes redundant encodings).
enum BlobTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let selector = input.first else { return }
        let bytes = [UInt8](input.dropFirst())
        switch selector % 6 {
        case 0:
            guard let first = try? LiveCheckpoint.decode(bytes) else { return }
            let encode = { (r: (puts: [LiveBlock], removes: [UInt64])) in LiveCheckpoint.encode(puts: r.puts, removes: r.removes) }
            let again = roundTrip(first, encode: encode, decode: { try LiveCheckpoint.decode($0) })
            let third = roundTrip(again, encode: encode, decode: { try LiveCheckpoint.decode($0) })
            same(again.puts, third.puts)
            same(again.removes, third.removes)
            _ = LiveCheckpoint.apply(puts: again.puts, removes: again.removes, to: first.puts)
        case 1:
            guard let first = try? PackedRows.decodeHistory(bytes) else { return }
            let again = roundTrip(first, encode: PackedRows.encode(history:), decode: { try PackedRows.decodeHistory($0) })
            same(again, roundTrip(again, encode: PackedRows.encode(history:), decode: { try PackedRows.decodeHistory($0) }))
        case 2:
            guard let first = try? PackedRows.decodeKinds(bytes) else { return }
            same(first, roundTrip(first, encode: PackedRows.encode(kinds:), decode: { try PackedRows.decodeKinds($0) }))
        case 3:
            guard let first = try? PackedRows.decodeLifetimes(bytes) else { return }
            same(first, roundTrip(first, encode: PackedRows.encode(lifetimes:), decode: { try PackedRows.decodeLifetimes($0) }))
        case 4:
            guard let first = try? PackedRows.decodeLines(bytes) else { return }
            let again = roundTrip(first, encode: PackedRows.encode(lines:), decode: { try PackedRows.decodeLines($0) })
            same(again, roundTrip(again, encode: PackedRows.encode(lines:), decode: { try PackedRows.decodeLines($0) }))
        default:
            var parents: [Int32] = [0], locations: [Int32] = [0]
            guard (try? PackedRows.decodeNodes(bytes, first: 1, into: &parents, &locations)) != nil else { return }
            let nodes = (1..<parents.count).map { (parent: Int64(parents[$0]), location: Int64(locations[$0])) }
            var p2: [Int32] = [0], l2: [Int32] = [0]
            do {
                try PackedRows.decodeNodes(PackedRows.encode(nodes: nodes, first: 1), first: 1, into: &p2, &l2)
            } catch {
                fatalError("stack-tree nodes the reader accepted do not read back: \(error)")
            }
            same(parents, p2)
            same(locations, l2)
        }
    }

    private static func roundTrip<T>(_ value: T, encode: (T) -> [UInt8], decode: ([UInt8]) throws -> T) -> T {
        do {
            return try decode(encode(value))
        } catch {
            fatalError("a blob the reader accepted does not read back once written again: \(error)")
        }
    }

    private static func same<T: Equatable>(_ a: T, _ b: T) {
        if a != b { fatalError("a blob changed on a second write and read") }
    }
}
