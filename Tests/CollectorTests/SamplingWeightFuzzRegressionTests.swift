import Vocabulary
import XCTest

/// The sessionedit fuzzer's finding (tools/fuzz/regressions/sessionedit/sampling-interval-weight-inf):
/// a session whose space claims a sampling interval of about 7e17 bytes made `leakreport top --min-size`
/// die with SIGILL converting an infinite weight to UInt64, since 1 - exp(-size / interval) rounds to 0
/// below a ratio of about 1e-16. Weights must stay finite, and whole figures saturate.
final class SamplingWeightFuzzRegressionTests: XCTestCase {
    func testTheFuzzersIntervalGivesAFiniteWeight() {
        // The value the fuzzer wrote into spaces.sampling_interval (little-endian bytes 09 00 00 06 2d 54 50 0a).
        let interval: UInt64 = 0x0A50_542D_0600_0009
        let w = SamplingWeight.weighted(size: 16, interval: interval)
        // About interval / 16 blocks of 16 bytes: the interval's bytes (to the last bits of a Double).
        XCTAssertEqual(Double(w.blocks), Double(interval) / 16, accuracy: Double(interval) * 1e-14)
        XCTAssertEqual(Double(w.bytes), Double(interval), accuracy: Double(interval) * 1e-14)
    }

    func testTinyRatiosWeighTheirInverse() {
        // 16 / 2^60 = 2^-56: each recorded block stands for 2^56 blocks, 2^60 bytes.
        XCTAssertEqual(SamplingWeight.weight(size: 16, interval: 1 << 60), 0x1p56)
        let w = SamplingWeight.weighted(size: 16, interval: 1 << 60)
        XCTAssertEqual(w.bytes, 1 << 60)
        XCTAssertEqual(w.blocks, 1 << 56)
    }

    func testFiguresPastUInt64Saturate() {
        // 1 / 2^64: the weight 2^64 itself is one past UInt64.max.
        let w = SamplingWeight.weighted(size: 1, interval: .max)
        XCTAssertEqual(w.bytes, .max)
        XCTAssertEqual(w.blocks, .max)
    }

    func testOrdinaryWeightsAreUnchanged() {
        XCTAssertEqual(SamplingWeight.weight(size: 16, interval: 4096), 1 / (1 - exp(-16.0 / 4096)))
        XCTAssertEqual(SamplingWeight.weighted(size: 8192, interval: 4096).bytes, 8192)
    }
}
