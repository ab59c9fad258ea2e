@testable import CollectionRunner
import ShimSource
@testable import Symbols
@testable import Vocabulary
import XCTest

/// The /proc text parsers the proc fuzz target feeds (tools/fuzz/Harness/ProcTarget.swift), on the
/// lines that used to trap or that a hostile or odd kernel could produce.
final class ProcParserTests: XCTestCase {
    func testStatusSizes() {
        XCTAssertEqual(HostFacts.statusBytes(status: "Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t    1234 kB\n", field: "VmRSS:"), 1234 * 1024)
        // 2^64 - 1 kB parses as a UInt64 but is not a byte count: it used to trap on the multiplication.
        XCTAssertNil(HostFacts.statusBytes(status: "VmRSS:\t18446744073709551615 kB\n", field: "VmRSS:"))
        XCTAssertNil(HostFacts.statusBytes(status: "VmRSS:\t99999999999999999999999 kB\n", field: "VmRSS:"))
        XCTAssertNil(HostFacts.statusBytes(status: "VmRSS:\t kB\n", field: "VmRSS:"))
        XCTAssertNil(HostFacts.statusBytes(status: "VmRSS:\t١٢ kB\n", field: "VmRSS:"), "digits other than ASCII are not a size")
        XCTAssertNil(HostFacts.statusBytes(status: "", field: "VmRSS:"))
    }

    func testStatusIDs() throws {
        let owner = ProcessOwner.parse(status: "Uid:\t1000\t1000\t1000\t1001\nGid:\t100\t100\t100\t101\nGroups:\t5 6 \n")
        var expected = ProcessOwner(uids: [1000, 1000, 1000], gids: [100, 100, 100])
        (expected.fsUID, expected.fsGID, expected.groups) = (1001, 101, [5, 6])
        XCTAssertEqual(owner, expected)
        // File access goes by the fs ids and the groups: owner, group, then other bits.
        func file(_ uid: UInt32, _ gid: UInt32, _ mode: mode_t) -> stat {
            var st = stat()
            (st.st_uid, st.st_gid, st.st_mode) = (uid, gid, S_IFREG | mode)
            return st
        }
        let o = try XCTUnwrap(owner)
        XCTAssertTrue(o.mayRead(file(1001, 0, 0o400)))
        XCTAssertFalse(o.mayRead(file(1001, 0, 0o044)), "the owner's bits decide for the owner")
        XCTAssertFalse(o.mayRead(file(1000, 0, 0o600)), "the real uid is not what the kernel checks")
        XCTAssertTrue(o.mayRead(file(0, 6, 0o640)))
        XCTAssertFalse(o.mayRead(file(0, 7, 0o640)))
        XCTAssertTrue(o.mayRead(file(0, 7, 0o604)))
        XCTAssertNil(ProcessOwner.parse(status: "Uid:\t1000\t99999999999\t1000\nGid:\t1\t1\t1\n"), "an id above 32 bits")
        XCTAssertNil(ProcessOwner.parse(status: "Uid:\t1000\n"))
        XCTAssertEqual(PerfMap.namespacePid(status: "NSpid:\t4242\t17\n"), 17)
        XCTAssertNil(PerfMap.namespacePid(status: "NSpid:\t4242\t99999999999\n"))
    }

    func testCommandLine() {
        XCTAssertEqual(ShimCollection.parseCommandLine("a\0b c\0\0d\0"), ["a", "b c", "d"])
        XCTAssertEqual(ShimCollection.parseCommandLine(""), [])
    }
}
