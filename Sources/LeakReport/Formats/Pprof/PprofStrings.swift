/// pprof's string table: every string stored once, referred to by index; index 0 is "".
struct PprofStrings {
    private var interner: Interner<String> = {
        var i = Interner<String>()
        _ = i.id("")
        return i
    }()

    var table: [String] { interner.values }

    mutating func id(_ s: String) -> Int64 { Int64(interner.id(s)) }

    mutating func id(_ s: String?) -> Int64 { s.map { id($0) } ?? 0 }
}
