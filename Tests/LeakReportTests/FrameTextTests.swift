import LeakReport
import SessionStore
import XCTest

/// Every form a frame takes in the text reports.
final class FrameTextTests: XCTestCase {
    func testEachFrameForm() {
        let a: UInt64 = 0x5555_0000_1234
        XCTAssertEqual(
            Formatting.frame(FrameRow(address: a, function: "f(int)", offset: 0x1f, module: "/usr/bin/app", file: "a.cc", line: 7)),
            "0x0000555500001234 f(int)+0x1f [app] a.cc:7")
        XCTAssertEqual(
            Formatting.frame(FrameRow(address: a, function: "helper", module: "/usr/bin/app", file: "h.h", line: 3, inlined: true)),
            "0x0000555500001234 helper (inlined) [app] h.h:3")
        XCTAssertEqual(Formatting.frame(FrameRow(address: a, module: "/bin/dash", fileOffset: 0x1a2b3)), "0x0000555500001234 [dash+0x1a2b3]")
        XCTAssertEqual(Formatting.frame(FrameRow(address: a, module: "/bin/dash")), "0x0000555500001234 [unknown] [dash]")
        XCTAssertEqual(
            Formatting.frame(FrameRow(address: a, function: "JS:~run /app.js:3:1", offset: 0xc, module: FrameRow.jitModule)),
            "0x0000555500001234 JS:~run /app.js:3:1+0xc [jit]")
        XCTAssertEqual(Formatting.frame(FrameRow(address: a, module: FrameRow.jitModule)), "0x0000555500001234 [jit]")
        XCTAssertEqual(Formatting.frame(FrameRow(address: a)), "0x0000555500001234 [unknown]")
    }
}
