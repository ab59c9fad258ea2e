import CollectionRunner
import Tracking
import Vocabulary
import Foundation
import TestSupport
import XCTest

/// A memory cgroup with a small limit that a test creates and removes: v1 when the machine mounts the
/// v1 memory controller, else v2 where a cgroup2 hierarchy has the memory controller.
final class MemoryCgroup {
    let path: String
    /// The path inside its hierarchy, as the kernel reports a memcg ("/name").
    let name: String
    let limitBytes: UInt64

    init(limitBytes: UInt64) throws {
        let leaf = "leaktest-\(getpid())-\(UUID().uuidString.prefix(6))"
        self.limitBytes = limitBytes
        name = "/" + leaf
        let fm = FileManager.default
        if fm.fileExists(atPath: "/sys/fs/cgroup/memory/memory.limit_in_bytes") {
            path = "/sys/fs/cgroup/memory/" + leaf
            try fm.createDirectory(atPath: path, withIntermediateDirectories: false)
            try write("memory.limit_in_bytes", String(limitBytes))
            // Without swap accounting a hog could swap instead of meeting the OOM killer.
            if fm.fileExists(atPath: path + "/memory.memsw.limit_in_bytes") { try write("memory.memsw.limit_in_bytes", String(limitBytes)) }
            return
        }
        for root in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
            guard let controllers = ProcFile.read(root + "/cgroup.controllers"), controllers.split(whereSeparator: \.isWhitespace).contains("memory") else {
                continue
            }
            try? "+memory".write(toFile: root + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
            path = root + "/" + leaf
            try fm.createDirectory(atPath: path, withIntermediateDirectories: false)
            try write("memory.max", String(limitBytes))
            if fm.fileExists(atPath: path + "/memory.swap.max") { try write("memory.swap.max", "0") }
            return
        }
        let reason = "skipped: this machine has no memory cgroup controller (v1 or v2) to provoke a memcg OOM"
        print(reason)
        throw XCTSkip(reason)
    }

    func add(pid: Int32) throws { try write("cgroup.procs", String(pid)) }

    /// Removes the cgroup; its processes must be gone.
    func remove() {
        for _ in 0..<100 {
            if rmdir(path) == 0 || errno == ENOENT { return }
            usleep(50_000)
        }
    }

    private func write(_ file: String, _ value: String) throws {
        do {
            try value.write(toFile: path + "/" + file, atomically: false, encoding: .utf8)
        } catch {
            throw TestSupportError("cannot write \(value) to \(path)/\(file): \(error)")
        }
    }
}
