import Foundation
import CollectionRunner
import Glibc
import SessionStore
import Tracking
import Vocabulary
import TestSupport
import XCTest

@testable import ShimSource

/// The collector may run as root beside an unprivileged app, so a module path the app reports is never
/// what gets opened: only what the process really maps. A ring that claims /etc/shadow or a FIFO at
/// addresses the process does not map gets no file, and the collection neither reads it nor blocks.
final class HostileModuleTests: XCTestCase {
    private func moduleFiles(claiming path: String) throws -> [String: ModuleFile?] {
        let ring = try TestRing()
        // An address range this process does not map (nothing lives this low).
        _ = ring.append(Rec.module(7, path: path, buildID: [], bias: 0x10000, lo: 0x10000, hi: 0x20000))
        // And one it does map: the test binary itself, claimed under the hostile path too.
        let own = try XCTUnwrap(ProcMaps.read(pid: getpid())?.first { $0.isFile && $0.executable })
        _ = ring.append(Rec.module(8, path: path, buildID: [], bias: 0, lo: own.start, hi: own.end))
        return try moduleFiles(ring, pid: getpid())
    }

    /// The files the modules in `ring` got, by their `lo` in hex; `beforePoll` runs after the source
    /// began (and read who the process is) and before it reads the records.
    private func moduleFiles(_ ring: TestRing, pid: Int32, beforePoll: () throws -> Void = {}) throws -> [String: ModuleFile?] {
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let source = RingSource(reader: reader, pid: pid, program: nil, command: ["test"], maps: ProcMaps.read(pid: pid))
        let tracker = Tracker()
        try source.begin(into: tracker)
        try beforePoll()
        _ = try source.poll(into: tracker)
        let cut = tracker.cut(at: 1)
        var out: [String: ModuleFile?] = [:]
        for m in cut.newModules { out[String(m.info.lo, radix: 16)] = m.info.file }
        return out
    }

    /// Waits (up to 10 s) until `pid` has exec'd sleep, the last step of its start-up, and `also` holds.
    private func becomesSleep(_ pid: Int32, _ also: () -> Bool = { true }) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while ProcFile.read("/proc/\(pid)/comm") != "sleep\n" || !also() {
            guard Date() < deadline else { return false }
            usleep(10_000)
        }
        return true
    }

    private func inode(_ f: ModuleFile?) -> UInt64? {
        guard let f else { return nil }
        var st = stat()
        return fstat(f.fd, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    func testAClaimedShadowFileIsNeverOpened() throws {
        let files = try moduleFiles(claiming: "/etc/shadow")
        XCTAssertEqual(files.count, 2)
        XCTAssertNil(files["10000"] ?? nil, "nothing is mapped there: no file at all")
        var shadow = stat()
        XCTAssertEqual(stat("/etc/shadow", &shadow), 0)
        let opened = files.filter { $0.key != "10000" }.values.compactMap { inode($0) }
        XCTAssertEqual(opened.count, 1, "the mapped range gets the file really mapped there")
        XCTAssertNotEqual(opened.first, UInt64(shadow.st_ino), "and that file is not /etc/shadow")
    }

    func testAClaimedFIFOIsNeverOpenedAndNothingBlocks() throws {
        let dir = Scratch.directory.appendingPathComponent("hostile-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("libevil.so").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let files = try moduleFiles(claiming: fifo)
        XCTAssertNil(files["10000"] ?? nil)
        XCTAssertEqual(files.values.compactMap { inode($0) }.count, 1)
    }

    /// A library unloaded before its record is read is no longer mapped: its claimed path is opened
    /// only when the process itself could read it. Here the process runs as nobody: a world-readable
    /// ELF file opens, a root-only one does not (as root, the collector could read it), whether the
    /// process still lives or is gone by the time the records are read.
    func testAnUnmappedModuleOpensOnlyWhatTheProcessCouldReadItself() throws {
        let dir = Scratch.directory.appendingPathComponent("unmapped-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        defer { try? FileManager.default.removeItem(at: dir) }
        let readable = dir.appendingPathComponent("libpublic.so").path
        let secret = dir.appendingPathComponent("libsecret.so").path
        for (path, mode) in [(readable, 0o644), (secret, 0o600)] {
            try FileManager.default.copyItem(atPath: "/bin/true", toPath: path)
            XCTAssertEqual(chmod(path, mode_t(mode)), 0)
        }
        for gone in [false, true] {
            let child = try RunningProcess(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sleep", "30"])
            defer { child.signal(SIGKILL); _ = try? child.wait(timeout: 10) }
            // setpriv changes its ids, then becomes sleep under the same pid.
            guard becomesSleep(child.pid, { ProcessOwner.of(pid: child.pid)?.fsUID == 65534 }) else {
                return XCTFail("setpriv did not become nobody's sleep")
            }
            let ring = try TestRing()
            _ = ring.append(Rec.module(7, path: readable, buildID: [], bias: 0x10000, lo: 0x10000, hi: 0x20000))
            _ = ring.append(Rec.module(8, path: secret, buildID: [], bias: 0x30000, lo: 0x30000, hi: 0x40000))
            let files = try moduleFiles(ring, pid: child.pid) {
                if gone {
                    child.signal(SIGKILL)
                    _ = try child.wait(timeout: 10)
                }
            }
            var expected = stat()
            XCTAssertEqual(stat(readable, &expected), 0)
            XCTAssertEqual(inode(files["10000"] ?? nil), UInt64(expected.st_ino), "gone: \(gone): a file the user nobody may read is opened")
            XCTAssertNil(files["30000"] ?? nil, "gone: \(gone): a file only root may read is never opened on nobody's word")
        }
    }

    /// A process in a mount namespace of its own (a container) sees its own file at a path: an unmapped
    /// module's claimed path is opened as the process sees it, through /proc/PID/root.
    func testAnUnmappedModulePathMeansWhatItMeansInTheProcesssOwnRoot() throws {
        let dir = Scratch.directory.appendingPathComponent("nsroot-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let claimed = dir.appendingPathComponent("libplugin.so").path, theirs = dir.appendingPathComponent("theirs.so").path
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: claimed)
        try FileManager.default.copyItem(atPath: "/bin/false", toPath: theirs)
        // Inside its namespace, their file is mounted over the claimed path; here the path is still ours.
        let child = try RunningProcess([
            "/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", "mount --bind \(theirs) \(claimed) && echo mounted && exec sleep 30",
        ])
        defer { child.signal(SIGKILL); _ = try? child.wait(timeout: 10) }
        try child.waitFor("mounted")
        guard becomesSleep(child.pid) else { return XCTFail("the namespaced shell did not become sleep") }
        let ring = try TestRing()
        _ = ring.append(Rec.module(7, path: claimed, buildID: [], bias: 0x10000, lo: 0x10000, hi: 0x20000))
        let files = try moduleFiles(ring, pid: child.pid)
        var st = stat()
        XCTAssertEqual(stat(theirs, &st), 0)
        XCTAssertEqual(inode(files["10000"] ?? nil), UInt64(st.st_ino), "the file the process sees at that path, not ours")
    }
}
