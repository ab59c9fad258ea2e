/// Sorting a batch's live blocks and removed addresses by address, for the checkpoint rows.
///
/// Written by hand (an LSD radix sort on the address bytes) because the standard library's comparison
/// sort was the session writer's largest single cost at scale: a cut hands over millions of new blocks in
/// the live table's hash order, and sorting them with a closure comparator took about a fifth of the
/// writer's CPU at ten million live blocks. A radix pass is a linear scan, and the bytes that are the same
/// in every address of a batch (the high ones, for a heap of a few GiB) cost no pass at all.
public enum AddressSort {
    /// Below this, a comparison sort is as fast and needs no histograms.
    static let radixThreshold = 512

    /// Sorts `blocks` by address; stable, so equal addresses keep their order.
    public static func sort(_ blocks: inout [LiveBlock]) {
        if blocks.count < radixThreshold {
            blocks.sort { $0.address < $1.address }
            return
        }
        if !sortByKeys(&blocks) { radix(&blocks) }
    }

    /// Sorts one 8-byte key per block (the address's offset in the batch's range, its alignment dropped,
    /// above the block's index) and then gathers the blocks in that order once: each radix pass moves 8
    /// bytes per block instead of 32. Stable, since equal addresses order by index. False when the range
    /// and the count together need more than 64 bits (spaces far apart); the caller then sorts the blocks.
    private static func sortByKeys(_ blocks: inout [LiveBlock]) -> Bool {
        let n = blocks.count
        var lo = UInt64.max, hi: UInt64 = 0, any: UInt64 = 0
        for b in blocks {
            lo = min(lo, b.address)
            hi = max(hi, b.address)
            any |= b.address
        }
        let shift = UInt64(any == 0 ? 0 : any.trailingZeroBitCount)  // every address is a multiple of 2^shift, lo too
        let span = (hi - lo) >> shift
        let indexBits = UInt64(64 - UInt64(n - 1).leadingZeroBitCount)
        let spanBits = UInt64(64 - span.leadingZeroBitCount)
        guard spanBits + indexBits <= 64 else { return false }
        var keys = blocks.withUnsafeBufferPointer { b in (0..<n).map { i in ((b[i].address - lo) >> shift) << indexBits | UInt64(i) } }
        radix(&keys)
        let mask = UInt64(1) << indexBits - 1
        let sorted = blocks.withUnsafeBufferPointer { src in keys.map { src[Int(truncatingIfNeeded: $0 & mask)] } }
        blocks = sorted
        return true
    }

    /// The addresses sorted, each once.
    public static func sortedUnique(_ addresses: [UInt64]) -> [UInt64] {
        var a = addresses
        if a.count < radixThreshold { a.sort() } else { radix(&a) }
        guard a.count > 1 else { return a }
        var w = 1
        for i in 1..<a.count where a[i] != a[w - 1] {
            a[w] = a[i]
            w += 1
        }
        a.removeLast(a.count - w)
        return a
    }

    private static func radix<T: AddressKeyed>(_ items: inout [T]) {
        let n = items.count
        // All eight byte histograms in one pass over the input.
        var counts = [Int](repeating: 0, count: 8 * 256)
        for item in items {
            var k = item.sortAddress
            for d in 0..<8 {
                counts[d << 8 | Int(k & 0xff)] += 1
                k >>= 8
            }
        }
        var scratch = items
        var inScratch = false
        for d in 0..<8 {
            let base = d << 8
            // A byte that is the same in every key moves nothing.
            if counts[base | Int((items[0].sortAddress >> UInt64(8 * d)) & 0xff)] == n { continue }
            var offsets = [Int](repeating: 0, count: 256)
            var sum = 0
            for b in 0..<256 {
                offsets[b] = sum
                sum += counts[base | b]
            }
            let shift = UInt64(8 * d)
            if inScratch {
                scatter(from: scratch, to: &items, offsets: &offsets, shift: shift)
            } else {
                scatter(from: items, to: &scratch, offsets: &offsets, shift: shift)
            }
            inScratch.toggle()
        }
        if inScratch { swap(&items, &scratch) }
    }

    @inline(__always)
    private static func scatter<T: AddressKeyed>(from src: [T], to dst: inout [T], offsets: inout [Int], shift: UInt64) {
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { t in
                offsets.withUnsafeMutableBufferPointer { o in
                    for item in s {
                        let b = Int((item.sortAddress >> shift) & 0xff)
                        t[o[b]] = item
                        o[b] += 1
                    }
                }
            }
        }
    }
}

/// What the radix sort orders by (a protocol rather than a key path, so that the specialized loops read
/// the field directly).
protocol AddressKeyed {
    var sortAddress: UInt64 { get }
}

extension LiveBlock: AddressKeyed {
    var sortAddress: UInt64 { address }
}

extension UInt64: AddressKeyed {
    var sortAddress: UInt64 { self }
}
