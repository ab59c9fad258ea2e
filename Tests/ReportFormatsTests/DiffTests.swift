import Foundation
import ReportFormats
import XCTest

final class DiffTests: XCTestCase {
    /// The second run loaded everything at other addresses, leaked three more bodies, and no longer
    /// logs; stacks are matched by their symbolized frames all the same.
    func testMatchesAcrossAddressesGrowthFirstThenShrinkage() throws {
        let base = Fixtures.profile(bodyBlocks: 4)
        var new = Fixtures.profile(slide: 0x3_7000_0000, bodyBlocks: 7)
        new.stacks.removeLast()
        new.stacks[1].inUseBytes = 1_048_576
        new.stacks[1].inUseBlocks = 4
        let d = ProfileDiff(base: base, new: new)
        XCTAssertEqual(d.changes.map(\.status), [.changed, .changed, .gone])
        XCTAssertEqual(d.changes.map(\.deltaBytes), [3_145_728, -262_144, -4096])
        XCTAssertEqual(d.changes.map(\.deltaBlocks), [3, -1, -64])
        XCTAssertEqual(d.changes[0].stack.frames[0].function, "read_body")
        XCTAssertEqual(d.changes[0].stack.frames[0].address, 0x5555_0000_1256 + 0x3_7000_0000)
        XCTAssertEqual(d.deltaBytes, 3_145_728 - 262_144 - 4096)
        XCTAssertEqual(d.newBytes, 7 * 1_048_576 + 1_048_576)

        let text = DiffTextRenderer.render(d)
        XCTAssertEqual(
            text,
            """
            outstanding: 5509120 -> 8388608 bytes (+2879488), 73 -> 11 allocations (-62)
            1 stacks grew, 2 shrank:
            \t+3145728 bytes (+3 allocations) from stack: 4194304 -> 7340032 bytes in 4 -> 7 allocations
            \t\t0x0000555870001256 read_body (inlined) [app] src/app.c:26
            \t\t0x0000555870001256 handle [app] src/app.c:34
            \t\t0x00005558700013bd main [app] src/app.c:59
            \t-262144 bytes (-1 allocations) from stack (mmap): 1310720 -> 1048576 bytes in 5 -> 4 allocations
            \t\t0x0000555870001327 cache_put [app] src/app.c:44
            \t\t0x00005558700013f7 main [app] src/app.c:62
            \t-4096 bytes (-64 allocations) from stack: 4096 -> 0 bytes in 64 -> 0 allocations [gone]
            \t\t0x00007f000009a010 __strdup [libc.so.6] string/strdup.c:41
            \t\t0x0000555500001400 log_line [app] src/app.c:80
            \t\t0x00005555000013f7 main [app] src/app.c:62

            """)
        let json = try JSONSerialization.jsonObject(with: Data(DiffJSON(d).encoded().utf8)) as? [String: Any]
        let totals = json?["totals"] as? [String: Any]
        XCTAssertEqual(totals?["delta_bytes"] as? Int, 2_879_488)
        let stacks = json?["stacks"] as? [[String: Any]]
        XCTAssertEqual(stacks?.map { $0["status"] as? String }, ["changed", "changed", "gone"])
        XCTAssertEqual((stacks?[0]["change"] as? [String: Any])?["new_blocks"] as? Int, 7)
        XCTAssertEqual(((stacks?[0]["frames"] as? [[String: Any]])?[0])?["inlined"] as? Bool, true)
    }

    /// Identical runs but for ASLR: nothing changed.
    func testSameStacksAtOtherAddressesAreUnchanged() {
        let d = ProfileDiff(base: Fixtures.profile(), new: Fixtures.profile(slide: 0x1000_0000))
        XCTAssertTrue(d.changes.isEmpty)
        XCTAssertEqual(ProfileDiff(base: Fixtures.profile(), new: Fixtures.profile(slide: 0x1000_0000), includeUnchanged: true).changes.count, 3)
        XCTAssertEqual(DiffTextRenderer.render(d), "outstanding: 5509120 -> 5509120 bytes (0), 73 -> 73 allocations (0)\nNo stack changed.\n")
    }

    /// Unsymbolized frames match by module and file offset; the same offset in another library does not.
    func testUnsymbolizedFramesMatchByModuleOffset() {
        let p = Fixtures.profile()
        var other = Fixtures.profile(slide: 0x2000)
        // Same libc offset in both: matched. Then move the first stack's libc frame by 16 bytes: a new stack.
        XCTAssertTrue(ProfileDiff(base: p, new: other).changes.isEmpty)
        other.stacks[0].frames[3].address += 16
        XCTAssertEqual(ProfileDiff(base: p, new: other).changes.map(\.status), [.new, .gone])
    }

    /// Two stacks of one run that differ only in addresses (two copies of a loaded library) add up.
    func testStacksWithTheSameIdentityAddUp() {
        var new = Fixtures.profile()
        var twin = new.stacks[2]
        twin.frames[0].address += 0x100
        twin.frames[0].offset = nil
        new.stacks.append(twin)
        let d = ProfileDiff(base: Fixtures.profile(), new: new)
        XCTAssertEqual(d.changes.map(\.deltaBytes), [4096])
        XCTAssertEqual(d.changes.map(\.newBlocks), [128])
    }

    /// With keys given, the keys alone decide which stacks are one: frameless stacks match by key, the
    /// stacks a key joins add up, and each change says where its stack is in its profile.
    func testGivenKeysDecideIdentity() {
        let base = Fixtures.profile(bodyBlocks: 4), new = Fixtures.profile(slide: 0x1000, bodyBlocks: 6)
        func frameless(_ p: Profile) -> Profile {
            var q = p
            for i in q.stacks.indices { q.stacks[i].frames = [] }
            return q
        }
        // Stacks 1 and 2 of the new run are given one key: they add up, and match the base's stack 1.
        let d = ProfileDiff(base: frameless(base), new: frameless(new), baseKeys: ["body", "cache", "log"], newKeys: ["body", "cache", "cache"])
        XCTAssertEqual(d.changes.map(\.status), [.changed, .changed, .gone])
        XCTAssertEqual(d.changes.map(\.deltaBytes), [2 * 1_048_576, Int64(new.stacks[2].inUseBytes), -Int64(base.stacks[2].inUseBytes)])
        XCTAssertEqual(d.changes.map(\.index), [0, 1, 2])
        XCTAssertEqual(d.changes.map(\.fromBase), [false, false, true])
        XCTAssertTrue(d.changes.allSatisfy { $0.stack.frames.isEmpty })
        // Keys equal to the identities give what the frames give.
        let byFrames = ProfileDiff(base: base, new: new)
        let byKeys = ProfileDiff(base: base, new: new, baseKeys: [0, 1, 2], newKeys: [0, 1, 2])
        XCTAssertEqual(byKeys.changes.map(\.deltaBytes), byFrames.changes.map(\.deltaBytes))
        XCTAssertEqual(byKeys.changes.map(\.stack), byFrames.changes.map(\.stack))
    }
}
