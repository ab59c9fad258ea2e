/// The framing of the BPF ring-buffer targets (kernel, uprobe): a sequence of records, each a
/// little-endian u16 length and that many bytes. Each is handed over in a buffer of exactly its length,
/// 8-byte aligned as libbpf hands them, so a read past it is an ASan report.
enum FramedRecords {
    static func forEach(in input: UnsafeRawBufferPointer, _ body: (UnsafeRawPointer, Int) -> Void) {
        guard let base = input.baseAddress else { return }
        var offset = 0
        while offset + 2 <= input.count {
            let length = Int(input[offset]) | Int(input[offset + 1]) << 8
            offset += 2
            let take = min(length, input.count - offset)
            let record = UnsafeMutableRawPointer.allocate(byteCount: max(take, 1), alignment: 8)
            defer { record.deallocate() }
            record.copyMemory(from: base + offset, byteCount: take)
            offset += take
            body(record, take)
        }
    }
}
