import CollectionRunner
import Glibc
import SessionStore
import Tracking
import Vocabulary
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
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let source = RingSource(reader: reader, pid: getpid(), program: nil, command: ["test"], maps: ProcMaps.read(pid: getpid()))
        let tracker = Tracker()
        try source.begin(into: tracker)
        _ = try source.poll(into: tracker)
        let cut = tracker.cut(at: 1)
        var out: [String: ModuleFile?] = [:]
        for m in cut.newModules { out[String(m.info.lo, radix: 16)] = m.info.file }
        return out
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
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("libevil.so").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let files = try moduleFiles(claiming: fifo)
        XCTAssertNil(files["10000"] ?? nil)
        XCTAssertEqual(files.values.compactMap { inode($0) }.count, 1)
    }
}
