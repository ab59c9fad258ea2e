/// Recognizes heaptrack's *temporary* allocations: a block freed before the thread that allocated it
/// allocated again. Each thread's latest allocation is remembered in two small direct-mapped tables
/// (thread → address, address → thread), so the check is a few memory reads per event and needs no
/// per-block field. A collision forgets one candidate: temporaries are then undercounted, never invented.
///
/// Fixed storage the owner frees with `deallocate()`: as arrays inside a struct inside the tracker's
/// space, every event's update paid for a uniqueness check, and now and then a copy.
struct TemporaryAllocations {
    private static let slots = 1024
    private let latestByThread: UnsafeMutablePointer<(tid: UInt32, address: UInt64)>
    private let threadByAddress: UnsafeMutablePointer<(address: UInt64, tid: UInt32)>

    init() {
        latestByThread = .allocate(capacity: Self.slots)
        latestByThread.initialize(repeating: (0, 0), count: Self.slots)
        threadByAddress = .allocate(capacity: Self.slots)
        threadByAddress.initialize(repeating: (0, 0), count: Self.slots)
    }

    func deallocate() {
        latestByThread.deallocate()
        threadByAddress.deallocate()
    }

    @inline(__always) private static func slot(_ tid: UInt32) -> Int { Int(tid) & (slots - 1) }
    @inline(__always) private static func slot(_ address: UInt64) -> Int {
        Int(truncatingIfNeeded: (address &* 0x9E37_79B9_7F4A_7C15) >> 54) & (slots - 1)
    }

    /// `tid` allocated `address`: its previous allocation can no longer be temporary.
    func allocated(_ address: UInt64, by tid: UInt32) {
        let t = Self.slot(tid)
        let previous = latestByThread[t]
        if previous.tid == tid && previous.address != 0 {
            let a = Self.slot(previous.address)
            if threadByAddress[a].address == previous.address && threadByAddress[a].tid == tid { threadByAddress[a] = (0, 0) }
        }
        latestByThread[t] = (tid, address)
        threadByAddress[Self.slot(address)] = (address, tid)
    }

    /// `address` was freed: true if it was still its thread's latest allocation.
    func freed(_ address: UInt64) -> Bool {
        let a = Self.slot(address)
        let entry = threadByAddress[a]
        guard entry.address == address, address != 0 else { return false }
        threadByAddress[a] = (0, 0)
        let t = Self.slot(entry.tid)
        if latestByThread[t].address == address { latestByThread[t] = (entry.tid, 0) }
        return true
    }
}
