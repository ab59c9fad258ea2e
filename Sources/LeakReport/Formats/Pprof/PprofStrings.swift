/// pprof's string table: every string stored once, referred to by index; index 0 is "".
struct PprofStrings {
    private(set) var table: [String] = [""]
    private var index: [String: Int64] = ["": 0]

    mutating func id(_ s: String) -> Int64 {
        if let i = index[s] { return i }
        let i = Int64(table.count)
        table.append(s)
        index[s] = i
        return i
    }

    mutating func id(_ s: String?) -> Int64 { s.map { id($0) } ?? 0 }
}
