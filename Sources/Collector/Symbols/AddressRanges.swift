/// Address ranges sorted by start and found by address: the one lookup behind every table of the
/// symbolizer (compile units, functions, ELF symbols, perf-map entries). Parallel arrays, since there
/// are hundreds of thousands of ranges in a big module.
struct AddressRanges {
    private(set) var starts: [UInt64] = []
    private(set) var ends: [UInt64] = []

    var isEmpty: Bool { starts.isEmpty }

    /// Adds a range; ranges must come in order of their starts. `end` is exclusive.
    mutating func append(start: UInt64, end: UInt64) {
        starts.append(start)
        ends.append(end)
    }

    /// Sets an end that was not known when the range was appended.
    mutating func setEnd(_ i: Int, _ end: UInt64) { ends[i] = end }

    /// The index of the range holding `address`. Ranges should not overlap; where a file makes them
    /// (a label inside a function, a unit inside another), the few before the nearest start are tried.
    func index(of address: UInt64) -> Int? {
        var lo = 0
        var hi = starts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if starts[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        var i = lo - 1
        while i >= 0 && i >= lo - 4 {
            if address < ends[i] { return i }
            i -= 1
        }
        return nil
    }
}
