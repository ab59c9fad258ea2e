import Foundation
import SessionStore

/// A module as the session knows it: the shim's report plus the session's own id.
public struct SessionModule: Sendable, Equatable {
    public var sessionID: Int64
    public var info: ModuleInfo
    public var loadedNs: UInt64
    /// The module's file, opened when the module was reported, so it still symbolizes after the
    /// program unloads it and even deletes it.
    public var file: ModuleFile?

    public init(sessionID: Int64, info: ModuleInfo, loadedNs: UInt64, file: ModuleFile? = nil) {
        self.sessionID = sessionID
        self.info = info
        self.loadedNs = loadedNs
        self.file = file
    }

    public static func == (a: SessionModule, b: SessionModule) -> Bool {
        a.sessionID == b.sessionID && a.info == b.info && a.loadedNs == b.loadedNs
    }

    /// Lower-case hex of the build-id, or empty.
    public var buildIDHex: String { info.buildID.map { String($0, radix: 16).leftPadded(to: 2) }.joined() }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

/// Which module covers an address right now. Modules come and go with dlopen/dlclose; stacks are
/// resolved against the map as it is when they arrive, so a library unloaded later still symbolizes.
struct ModuleMap {
    /// Beyond this many modules, files are opened by path at symbolization time instead.
    static let maxOpenFiles = 4096

    /// Loaded modules sorted by `lo`.
    private var active: [SessionModule] = []
    private var byShimID: [UInt32: Int64] = [:]
    private(set) var all: [SessionModule] = []
    private var unsentModules: [SessionModule] = []
    private var unsentUnloads: [(id: Int64, timeNs: UInt64)] = []

    /// Records a module report. A report of a module already loaded under the same shim id (the shim
    /// re-sends its modules after an attach) changes nothing.
    mutating func load(_ info: ModuleInfo, at time: UInt64) {
        if let sid = byShimID[info.id], let existing = active.first(where: { $0.sessionID == sid }), existing.info == info {
            return
        }
        unload(shimID: info.id, at: time)
        // An object mapped over addresses another still claims means that one is gone.
        for m in active where m.info.lo < info.hi && info.lo < m.info.hi { unload(shimID: m.info.id, at: time) }
        let file = all.count < Self.maxOpenFiles ? ModuleFile(path: info.path) : nil
        let m = SessionModule(sessionID: Int64(all.count + 1), info: info, loadedNs: time, file: file)
        all.append(m)
        unsentModules.append(m)
        byShimID[info.id] = m.sessionID
        let i = active.firstIndex { $0.info.lo > info.lo } ?? active.count
        active.insert(m, at: i)
    }

    mutating func unload(shimID: UInt32, at time: UInt64) {
        guard let sid = byShimID.removeValue(forKey: shimID) else { return }
        active.removeAll { $0.sessionID == sid }
        unsentUnloads.append((sid, time))
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

    /// Module rows and unloads not yet handed to the session.
    mutating func takeChanges() -> ([ModuleRow], [(id: Int64, timeNs: UInt64)]) {
        let rows = unsentModules.map {
            ModuleRow(id: $0.sessionID, path: $0.info.path, buildID: $0.buildIDHex, bias: $0.info.bias, lo: $0.info.lo, hi: $0.info.hi, loadedNs: $0.loadedNs)
        }
        let unloads = unsentUnloads
        unsentModules.removeAll()
        unsentUnloads.removeAll()
        return (rows, unloads)
    }
}

/// An open read-only descriptor of a module's file. The path comes from the traced program, which the
/// collector does not trust: it is opened O_PATH first and only reopened for reading if it is a regular
/// file, so a hostile path cannot make the collector open a device or block on a FIFO.
public final class ModuleFile: Sendable {
    public let fd: Int32
    /// O_PATH (Linux, every architecture but a few); Glibc's Swift overlay does not export it.
    private static let oPath: Int32 = 0o10000000

    init?(path: String) {
        let probe = open(path, Self.oPath | O_CLOEXEC)
        guard probe >= 0 else { return nil }
        defer { close(probe) }
        var st = stat()
        guard fstat(probe, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let fd = open("/proc/self/fd/\(probe)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.fd = fd
    }

    deinit { close(fd) }
}
