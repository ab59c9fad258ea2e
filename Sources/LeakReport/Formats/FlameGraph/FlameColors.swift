/// Fill colours of flame graph frames.
enum FlameColors {
    /// Leak mode: warm colours picked by a hash of the name, so one function has one colour everywhere
    /// and neighbours differ.
    static func warm(_ name: String) -> String {
        var h: UInt32 = 2_166_136_261
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return hex(205 + Int(h % 50), Int((h >> 8) % 190) + 40, Int((h >> 16) % 55))
    }

    /// Growth mode: from sand (not growing) to red (the fastest growth in the picture), blue for
    /// frames whose stacks shrink. `t` is the frame's growth over the largest growth, in [-1, 1].
    static func growth(_ t: Double) -> String {
        let sand = (232.0, 222.0, 196.0), red = (214.0, 39.0, 40.0), blue = (150.0, 180.0, 220.0)
        let (to, k) = t >= 0 ? (red, min(1, t).squareRoot()) : (blue, min(1, -t).squareRoot())
        func mix(_ a: Double, _ b: Double) -> Int { Int((a + (b - a) * k).rounded()) }
        return hex(mix(sand.0, to.0), mix(sand.1, to.1), mix(sand.2, to.2))
    }

    static let mergedFill = "#c8c8c8"
    static let rootFill = "#d8d8d8"

    static func hex(_ r: Int, _ g: Int, _ b: Int) -> String {
        let digits = Array("0123456789abcdef")
        var s = "#"
        for v in [r, g, b] {
            let c = max(0, min(255, v))
            s.append(digits[c >> 4])
            s.append(digits[c & 15])
        }
        return s
    }
}
