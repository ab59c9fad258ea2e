import Foundation
import Glibc
import RingFormat
import SessionStore
import ShimSource
import Tracking
import Vocabulary
import XCTest

/// Every input the ring fuzzer found a problem with (tools/fuzz/regressions/ring/), fed the way the
/// fuzz target feeds it (tools/fuzz/Harness/RingTarget.swift): a ring file image whose data region is
/// padded back to its size, read by a RingReader into a Tracker. Each must end in events or a clean
/// `RingError`, and quickly.
final class FuzzRegressionTests: XCTestCase {
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/fuzz/regressions")

    /// What one input gave: the events decoded (in order), and the error that ended the drain, if any.
    struct Outcome {
        var events: [Event] = []
        var error: RingError?
        var liveBlocks = 0
    }

    static func feed(ringImage bytes: [UInt8]) throws -> Outcome {
        let headerSize = Int(LR_HEADER_SIZE)
        var header = lr_header()
        withUnsafeMutableBytes(of: &header) { h in bytes.prefix(h.count).withUnsafeBytes { h.copyMemory(from: $0) } }
        let declared = header.data_size
        let valid = declared >= UInt64(LR_MIN_DATA_SIZE) && declared <= 256 << 10 && declared & (declared &- 1) == 0
        let dataSize = valid ? Int(declared) : Int(LR_MIN_DATA_SIZE)
        let fd = lr_memfd_create("leakshim-ring", LR_MFD_CLOEXEC | LR_MFD_ALLOW_SEALING)
        guard fd >= 0, ftruncate(fd, off_t(headerSize + dataSize)) == 0 else { throw TestRingError("memfd: errno \(errno)") }
        let image = Array(bytes.prefix(headerSize + dataSize))
        guard pwrite(fd, image, image.count, 0) == image.count, lr_add_seals(fd, Int32(LR_SEALS_APPLIED)) == 0 else {
            close(fd)
            throw TestRingError("writing the ring: errno \(errno)")
        }
        var outcome = Outcome()
        let mapping: RingMapping
        do { mapping = try RingMapping(fd: fd, pid: getpid()) } catch {
            outcome.error = error
            return outcome
        }
        let reader = RingReader(mapping: mapping)
        let tracker = Tracker(maxDepth: Int(mapping.maxDepth), now: mapping.startMonotonicNs)
        let space = tracker.openSpace(SpaceInfo(kind: .user, pid: 1, command: ["fuzz"], startNs: mapping.startMonotonicNs))
        do {
            try reader.attach(mode: header.reserved0 & 1 == 0 ? .launch : .attach, settle: .zero)
            _ = try reader.drainToEnd {
                outcome.events.append($0)
                tracker.apply($0, in: space)
            }
        } catch let e as RingError {
            outcome.error = e
        }
        outcome.liveBlocks = tracker.liveCount(in: space)
        _ = tracker.cut(at: mapping.startMonotonicNs &+ 1)
        reader.detach()
        return outcome
    }

    private func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = ContinuousClock.now
        let r = try body()
        let (s, atto) = (ContinuousClock.now - start).components
        return (r, Double(s) + Double(atto) / 1e18)
    }

    func testEveryRingRegressionEndsInEventsOrACleanError() throws {
        let dir = Self.regressions.appendingPathComponent("ring")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertFalse(names.isEmpty, "no inputs in \(dir.path)")
        for name in names {
            let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent(name)))
            let (outcome, seconds) = try timed { try Self.feed(ringImage: bytes) }
            XCTAssertLessThan(seconds, 10, "\(name) took \(seconds) s")
            if let e = outcome.error { XCTAssertFalse("\(e)".contains("\n"), "\(name): \(e)") }
            XCTAssertTrue(outcome.error != nil || !outcome.events.isEmpty, "\(name) gave neither events nor an error")
        }
    }

    /// The ring fuzzer's first find: a STACK record with id 589828 among small ids. The stack-id map
    /// grew its dense part element by element through a boxed `Repeated` (unspecialized in a debug
    /// build): 30 s under ASan for one record. The stack is kept, and an allocation naming it is live.
    func testAStackIDFarAheadOfTheOthersIsCheap() throws {
        let bytes = try [UInt8](Data(contentsOf: Self.regressions.appendingPathComponent("ring/timeout-stack-id-589828")))
        let (outcome, _) = try timed { try Self.feed(ringImage: bytes) }
        let far = outcome.events.compactMap { e -> StackDefinition? in if case .stack(let d) = e, d.id == 589_828 { return d } else { return nil } }
        XCTAssertEqual(far.count, 1)
        XCTAssertEqual(far.first?.frames.count, 5)

        let ring = try TestRing()
        ring.append(Rec.stack(4_194_303, [0x1000, 0x2000]))
        ring.append(Rec.alloc(0x5000, 64, stack: 4_194_303))
        ring.append(Rec.stack(0xFFFF_FFF0, [0x3000]))
        ring.append(Rec.alloc(0x6000, 32, stack: 0xFFFF_FFF0))
        let reader = RingReader(mapping: try ring.mapping())
        try reader.attach(mode: .launch)
        let tracker = Tracker()
        let space = tracker.openSpace(SpaceInfo(kind: .user, pid: 1, command: [], startNs: 0))
        let (_, seconds) = try timed { try reader.drainToEnd { tracker.apply($0, in: space) } }
        XCTAssertLessThan(seconds, 5)
        XCTAssertEqual(tracker.liveCount(in: space), 2)
        let batch = tracker.cut(at: 1)
        let frames = Set(batch.newStacks.map { $0.frames.map(\.address) })
        XCTAssertTrue(frames.isSuperset(of: [[0x1000, 0x2000], [0x3000]]), "both stacks defined, whatever their ids: \(frames)")
    }
}
