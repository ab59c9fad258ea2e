/// Where each frame of a flame graph goes: the stacks merged into a tree (frames of the same name under
/// the same parent become one), laid out left to right in name order, with frames too narrow to see
/// merged.
///
/// Built without a node tree, in the manner of flamegraph.pl's "flow" pass: the stacks are sorted by
/// their root-first path, so a frame's descendants follow it and each frame is known (start, end, name)
/// when the next stack leaves its path. This keeps a 131k-stack, 40-frame input to one sort and one
/// pass with nothing per frame but the rectangle it emits.
struct FlameLayout {
    struct Rect {
        /// 0 for the root ("all"); a stack's outermost frame has depth 1.
        var depth: Int
        /// In weight units (bytes or blocks), from the left edge.
        var start: UInt64
        var width: UInt64
        /// Index into `names`, or `FlameLayout.merged`, or `FlameLayout.root`.
        var name: Int
        /// How many frames a merged rectangle stands for (1 for an ordinary frame).
        var merged: Int
        /// Sum of the growth rates (bytes/s) of the stacks through this frame.
        var growth: Double
    }

    static let merged = -1
    static let root = -2

    var rects: [Rect] = []
    var names: [String] = []
    var total: UInt64 = 0
    var maxDepth = 0
    /// The narrowest frame still drawn on its own, in weight units.
    var minWidth: UInt64 = 0

    /// `paths` are root-first name ids into `names`; ids must sort as the names do.
    /// `order` is the indices of the stacks to draw, sorted by `paths` (see `sortedOrder`). Frames
    /// narrower than `minFraction` of the total are merged with their narrow neighbours, or left out.
    init(names: [String], paths: [[Int32]], order: [Int], weights: [UInt64], growth: [Double], minFraction: Double) {
        self.names = names
        total = order.reduce(0) { $0 + weights[$1] }
        minWidth = max(1, UInt64((Double(total) * minFraction).rounded(.up)))
        flow(order: order, paths: paths, weights: weights, growth: growth)
    }

    /// The stacks of non-zero weight, in root-first path order.
    static func sortedOrder(paths: [[Int32]], weights: [UInt64]) -> [Int] {
        paths.indices.filter { weights[$0] > 0 }.sorted { a, b in paths[a].lexicographicallyPrecedes(paths[b]) }
    }

    private struct Run {
        var start: UInt64
        var end: UInt64
        var count: Int
        var growth: Double
    }

    private mutating func flow(order: [Int], paths: [[Int32]], weights: [UInt64], growth: [Double]) {
        // Frames on the current path: name, start value, growth accumulated before it opened.
        var openName: [Int32] = [], openStart: [UInt64] = [], openGrowth: [Double] = []
        var pending: [Run?] = []
        var x: UInt64 = 0, g = 0.0
        var previous: [Int32] = []

        func emit(_ depth: Int, _ start: UInt64, _ end: UInt64, _ name: Int, _ merged: Int, _ growth: Double, into rects: inout [Rect], maxDepth: inout Int) {
            rects.append(Rect(depth: depth, start: start, width: end - start, name: name, merged: merged, growth: growth))
            maxDepth = max(maxDepth, depth)
        }
        func flush(_ d: Int) {
            guard d < pending.count, let run = pending[d] else { return }
            pending[d] = nil
            // A single narrow frame stays narrow; several side by side may add up to something visible.
            if run.count > 1, run.end - run.start >= minWidth {
                emit(d, run.start, run.end, FlameLayout.merged, run.count, run.growth, into: &rects, maxDepth: &maxDepth)
            }
        }
        func close(to depth: Int) {
            while openName.count > depth {
                let d = openName.count  // depth of the frame being closed (root is 0, so frames start at 1)
                let name = openName.removeLast(), start = openStart.removeLast(), gStart = openGrowth.removeLast()
                flush(d + 1)
                if d >= pending.count { pending.append(contentsOf: repeatElement(nil, count: d - pending.count + 1)) }
                if x - start >= minWidth {
                    flush(d)
                    emit(d, start, x, Int(name), 1, g - gStart, into: &rects, maxDepth: &maxDepth)
                } else if var run = pending[d], run.end == start {
                    run.end = x
                    run.count += 1
                    run.growth += g - gStart
                    pending[d] = run
                } else {
                    flush(d)
                    pending[d] = Run(start: start, end: x, count: 1, growth: g - gStart)
                }
            }
        }

        for i in order {
            let path = paths[i]
            var common = 0
            while common < path.count, common < previous.count, path[common] == previous[common] { common += 1 }
            close(to: common)
            for d in common..<path.count {
                openName.append(path[d])
                openStart.append(x)
                openGrowth.append(g)
            }
            x += weights[i]
            g += growth[i]
            previous = path
        }
        close(to: 0)
        flush(1)
        if total > 0 { emit(0, 0, total, FlameLayout.root, 1, g, into: &rects, maxDepth: &maxDepth) }
    }
}
