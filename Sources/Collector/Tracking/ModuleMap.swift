import SessionStore
import Vocabulary

/// A module as the session knows it: the source's report plus the session's own id.
public struct SessionModule: Sendable, Equatable {
    public var sessionID: Int64
    public var space: SpaceID
    public var info: ModuleInfo
    public var loadedNs: UInt64

    public init(sessionID: Int64, space: SpaceID, info: ModuleInfo, loadedNs: UInt64) {
        self.sessionID = sessionID
        self.space = space
        self.info = info
        self.loadedNs = loadedNs
    }

    /// Lower-case hex of the build-id, or empty.
    public var buildIDHex: String { info.buildID.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }

    /// Its row in the session's modules table.
    public var row: ModuleRow {
        ModuleRow(id: sessionID, space: space, path: info.path, buildID: buildIDHex, bias: info.bias, lo: info.lo, hi: info.hi, loadedNs: loadedNs)
    }
}

/// Which module covers an address right now in one space. Modules come and go with dlopen/dlclose;
/// stacks are resolved against the map as it is when they arrive, so a library unloaded later still
/// symbolizes.
struct ModuleMap {
    /// Loaded modules sorted by `lo`.
    private var active: [SessionModule] = []
    private var bySourceID: [UInt64: Int64] = [:]

    /// Records a module report; returns the new session module, or nil when the report repeats one
    /// already loaded under the same id (sources re-send their modules after an attach). `unloaded`
    /// gets the session ids of modules this one replaces.
    mutating func load(_ info: ModuleInfo, space: SpaceID, sessionID: () -> Int64, unloaded: (Int64) -> Void) -> SessionModule? {
        if let sid = bySourceID[info.id], let existing = active.first(where: { $0.sessionID == sid }), existing.info == info {
            return nil
        }
        unload(sourceID: info.id).map(unloaded)
        // An object mapped over addresses another still claims means that one is gone.
        for m in active where m.info.lo < info.hi && info.lo < m.info.hi { unload(sourceID: m.info.id).map(unloaded) }
        let m = SessionModule(sessionID: sessionID(), space: space, info: info, loadedNs: info.time)
        bySourceID[info.id] = m.sessionID
        let i = active.firstIndex { $0.info.lo > info.lo } ?? active.count
        active.insert(m, at: i)
        return m
    }

    /// Forgets a module; returns its session id if it was loaded.
    mutating func unload(sourceID: UInt64) -> Int64? {
        guard let sid = bySourceID.removeValue(forKey: sourceID) else { return nil }
        active.removeAll { $0.sessionID == sid }
        return sid
    }

    /// The module covering `address`, if any.
    func module(at address: UInt64) -> SessionModule? {
        var lo = 0, hi = active.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if active[mid].info.lo <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let m = active[lo - 1]
        return address < m.info.hi ? m : nil
    }
}
