/// Remembers a per-frame result by where the frame is (address, module, and its place in a run of
/// inlined frames at that address), so the frames that recur in thousands of stacks are named or
/// matched once, not once per stack. Valid for one profile: within it the symbolizer gives one address
/// one meaning.
struct FrameMemo<Value> {
    private struct Key: Hashable {
        var address: UInt64
        var module: Int
        /// How many frames after this one share its address (0 for the function it physically lies in).
        var inlineDepth: Int
    }

    private var values: [Key: Value] = [:]

    mutating func map(_ frames: [ProfileFrame], _ make: (ProfileFrame) -> Value) -> [Value] {
        // Walked outermost first, because a frame's inline depth depends on the frames after it.
        var reversed: [Value] = []
        reversed.reserveCapacity(frames.count)
        var depth = 0
        for i in frames.indices.reversed() {
            depth = i + 1 < frames.count && frames[i + 1].address == frames[i].address ? depth + 1 : 0
            let key = Key(address: frames[i].address, module: frames[i].module ?? -1, inlineDepth: depth)
            if let v = values[key] {
                reversed.append(v)
            } else {
                let v = make(frames[i])
                values[key] = v
                reversed.append(v)
            }
        }
        return reversed.reversed()
    }
}

/// Numbers distinct values in the order first seen.
struct Interner<T: Hashable> {
    private(set) var values: [T] = []
    private var ids: [T: Int32] = [:]

    mutating func id(_ v: T) -> Int32 {
        if let i = ids[v] { return i }
        let i = Int32(values.count)
        values.append(v)
        ids[v] = i
        return i
    }
}
