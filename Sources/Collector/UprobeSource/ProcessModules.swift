import Glibc
import Vocabulary

/// The ELF objects a process maps, as /proc/PID/maps shows them, each with its file opened the safe way
/// (`/proc/PID/map_files`, else inside `/proc/PID/root`, never the host's path: a container's or a
/// deleted file is the one the process really runs) and read once. Rescanned when the dynamic loader
/// says the set changed, or when a stack has a frame no known module covers.
final class ProcessModules {
    struct Module {
        var info: ModuleInfo
        var facts: ElfFacts
        var file: ModuleFile
        /// A path the kernel resolves to exactly this file, for the uprobes: our own descriptor of it.
        var probePath: String { "/proc/self/fd/\(file.fd)" }
        var name: String { info.path }
    }

    private struct Key: Hashable {
        var inode: UInt64
        var start: UInt64
        var path: String
    }

    let pid: Int32
    private let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
    private(set) var loaded: [UInt64: Module] = [:]
    private var idByKey: [Key: UInt64] = [:]
    private var nextID: UInt64 = 1
    /// Every mapping of the last scan, sorted: an address inside one that is not a module (anonymous
    /// memory, JIT code, the vdso) is known, and no reason to scan again.
    private var mappings: [ProcMapping] = []
    /// Files that are not ELF objects, or could not be opened, by key: not retried every scan.
    private var rejected: Set<Key> = []

    init(pid: Int32) { self.pid = pid }

    /// Reads the mappings again. Returns the modules that appeared and the ids of those that went, or
    /// nil when the process is gone (an exited process, zombie included, shows no mappings).
    func rescan(now: UInt64) -> (added: [Module], removed: [UInt64])? {
        guard let maps = ProcMaps.read(pid: pid), !maps.isEmpty else { return nil }
        mappings = maps
        var groups: [Key: [ProcMapping]] = [:]
        var order: [Key] = []
        var open: [String: Key] = [:]
        for m in maps where m.isFile {
            let file = "\(m.inode):\(m.path)"
            let key: Key
            if m.offset != 0, let continued = open[file] {
                key = continued
            } else {
                key = Key(inode: m.inode, start: m.start, path: m.path)
                open[file] = key
                order.append(key)
            }
            groups[key, default: []].append(m)
        }
        var added: [Module] = []
        var present: Set<UInt64> = []
        for key in order {
            if let id = idByKey[key] {
                present.insert(id)
                continue
            }
            guard !rejected.contains(key), let parts = groups[key], let module = load(key, parts, now: now) else {
                rejected.insert(key)
                continue
            }
            idByKey[key] = module.info.id
            loaded[module.info.id] = module
            present.insert(module.info.id)
            added.append(module)
        }
        let removed = loaded.keys.filter { !present.contains($0) }
        for id in removed { loaded.removeValue(forKey: id) }
        idByKey = idByKey.filter { present.contains($0.value) }
        return (added, removed)
    }

    private func load(_ key: Key, _ parts: [ProcMapping], now: UInt64) -> Module? {
        guard let first = parts.min(by: { $0.offset < $1.offset }), let file = ModuleFile.open(pid: pid, mapping: first),
            let facts = ElfFacts.read(fd: file.fd, functions: UprobePrograms.functionNames.union([Self.loaderHook])),
            let bias = facts.bias(mappedAt: first.start, fileOffset: first.offset, pageSize: pageSize)
        else { return nil }
        let (lo, hi) = facts.range(bias: bias)
        let path = key.path.hasSuffix(" (deleted)") ? String(key.path.dropLast(10)) : key.path
        let id = nextID
        nextID += 1
        return Module(info: ModuleInfo(id: id, path: path, buildID: facts.buildID, bias: bias, lo: lo, hi: hi, time: now, file: file), facts: facts, file: file)
    }

    /// The dynamic loader's function it calls around every change to the set of loaded objects.
    static let loaderHook = "_dl_debug_state"

    /// Whether the last scan knew `address`: in a module, or in some other mapping.
    func knows(_ address: UInt64) -> Bool {
        var lo = 0, hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].start <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo > 0 && address < mappings[lo - 1].end
    }

    /// Whether a loaded module covers `address`.
    func inModule(_ address: UInt64) -> Bool { loaded.values.contains { $0.info.lo <= address && address < $0.info.hi } }
}
