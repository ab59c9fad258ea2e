import Foundation
import TestSupport
import XCTest

/// `leakreport top --live` and `leakcollect --live` in a real terminal (tmux), against a program that
/// leaks while the test watches: keys sort, pause, expand and quit; the view ends with the collection.
final class LiveViewTerminalTests: XCTestCase {
    static let source = """
        #include <stdlib.h>
        #include <unistd.h>
        static void *held[4];
        void hold(void) { for (int i = 0; i < 4; i++) held[i] = malloc(262144); } // LIVE-HOLD
        void drip(void) { (void)!malloc(4096); } // LIVE-DRIP
        int main(int argc, char **argv) {
            int steps = argc > 1 ? atoi(argv[1]) : 80;
            hold();
            for (int i = 0; i < steps; i++) { drip(); usleep(100000); }
            return 0;
        }
        """

    /// The first table row (the one marked as selected at the top of the table).
    private func firstRow(_ screen: String) -> String {
        let lines = screen.split(separator: "\n", omittingEmptySubsequences: false)
        guard let h = lines.firstIndex(where: { $0.contains("BYTES") && $0.contains("BLOCKS") }), h + 1 < lines.count else { return "" }
        return String(lines[h + 1])
    }

    func testTopLiveFollowsALeakingProgram() throws {
        let tmux = try Tmux.start()
        defer { tmux.close() }
        let prog = try CProgram.build("live_top", source: Self.source)
        let session = Pipeline.sessionPath("live_top")
        let collector = try RunningProcess([try BuildProducts.leakcollect, "--quiet", "--interval", "0.2", "-o", session, "--", prog.path, "70"])
        defer { collector.signal(SIGKILL) }
        try tmux.run("\(try BuildProducts.leakreport) top --live \(session)")
        _ = try tmux.waitFor("drip")
        // A drip a tenth of a second: a second on, it holds more blocks than the 4 held ones.
        usleep(1_200_000)
        var screen = try tmux.capture()
        XCTAssertTrue(screen.contains("lost_events 0"), screen)
        XCTAssertTrue(screen.contains(prog.path), "header names the command: \(screen)")
        XCTAssertTrue(screen.contains("STACK (by bytes)"), screen)
        XCTAssertTrue(firstRow(screen).contains("1.0 MiB") && firstRow(screen).contains("hold"), "by bytes the 1 MiB held first: \(screen)")

        tmux.send("c")
        screen = try tmux.waitFor("STACK (by count)")
        XCTAssertTrue(firstRow(screen).contains("drip"), "by count the drip's many blocks first: \(screen)")
        tmux.send("g")
        screen = try tmux.waitFor("STACK (by growth)")
        XCTAssertTrue(firstRow(screen).contains("drip") && firstRow(screen).contains("KiB/s"), "by growth the drip first: \(screen)")

        // Paused, the figures stand still while the program goes on leaking.
        tmux.send("p")
        let paused = try tmux.waitFor("[paused]")
        usleep(700_000)
        XCTAssertEqual(firstRow(try tmux.capture()), firstRow(paused))
        tmux.send("p")
        _ = try tmux.waitFor { !$0.contains("[paused]") }

        // Expanded, the selected stack shows its frames, one a line, as `top` prints them.
        tmux.send("Enter")
        screen = try tmux.waitFor("[live_top]")
        XCTAssertTrue(screen.contains(" drip+0x") && screen.contains(" main+0x"), screen)

        // The program ends, the collection ends, the view ends by itself and leaves its last screen.
        screen = try tmux.waitFor("collection ended: exited with status 0", timeout: 30)
        XCTAssertTrue(screen.contains("drip"), screen)
        XCTAssertTrue(try tmux.waitFor("EXIT=0").contains("EXIT=0"))
        XCTAssertEqual(try collector.wait().status, 0)
    }

    func testLeakcollectLiveShowsTheViewInTheCollectorsTerminal() throws {
        let tmux = try Tmux.start()
        defer { tmux.close() }
        let prog = try CProgram.build("live_collect", source: Self.source)
        let session = Pipeline.sessionPath("live_collect")
        try tmux.run("\(try BuildProducts.leakcollect) --live --interval 0.2 -o \(session) -- \(prog.path) 40")
        var screen = try tmux.waitFor("drip")
        XCTAssertTrue(screen.contains("outstanding"), screen)
        tmux.send("g")
        // The first screen can come before the drip has grown over two intervals; a refresh later it leads.
        screen = try tmux.waitFor(what: "the drip first by growth") { $0.contains("STACK (by growth)") && self.firstRow($0).contains("drip") }
        XCTAssertTrue(firstRow(screen).contains("KiB/s"), screen)
        // The collection ends: the view closes, then the summary and the session's path, and the program's status.
        screen = try tmux.waitFor("EXIT=0", timeout: 30)
        XCTAssertTrue(screen.contains("session written to \(session)"), screen)
        XCTAssertTrue(screen.contains("40 allocations from stack"), "the drip's 40 blocks in the summary: \(screen)")
    }

    func testQuittingLeakcollectsViewKeepsCollecting() throws {
        let tmux = try Tmux.start()
        defer { tmux.close() }
        let prog = try CProgram.build("live_quit", source: Self.source)
        let session = Pipeline.sessionPath("live_quit")
        try tmux.run("\(try BuildProducts.leakcollect) --live --interval 0.2 -o \(session) -- \(prog.path) 25")
        _ = try tmux.waitFor("drip")
        tmux.send("q")
        let screen = try tmux.waitFor("EXIT=0", timeout: 30)
        XCTAssertTrue(screen.contains("25 allocations from stack"), "collection went on to the end: \(screen)")
    }
}

/// A detached tmux session of fixed size that a test types into and reads.
final class Tmux {
    let name: String
    let tmux: String

    private init(tmux: String) {
        self.tmux = tmux
        name = "lt-\(getpid())-\(UUID().uuidString.prefix(6))"
    }

    static func start() throws -> Tmux {
        guard let path = Toolchains.find("tmux") else {
            print("skipping: tmux is not installed (tools/setup.sh installs it)")
            throw XCTSkip("tmux is not installed")
        }
        return Tmux(tmux: path)
    }

    /// The client that started the server: Foundation sees it "running" as long as the server holds
    /// the fd it inherited, so it is never waited for; `close()` ends the server and with it that fd.
    private var starter: RunningProcess?

    /// Runs `command` in a new 120×32 session on a server of the test's own; `EXIT=status` is printed
    /// when it ends.
    func run(_ command: String) throws {
        starter = try RunningProcess([tmux, "-L", name, "new-session", "-d", "-s", name, "-x", "120", "-y", "32", "\(command); echo EXIT=$?; sleep 120"])
        let deadline = Date().addingTimeInterval(15)
        while try Run.capture([tmux, "-L", name, "has-session", "-t", name]).status != 0 {
            guard Date() < deadline else { throw TestSupportError("tmux did not start a session in 15 s: \(starter?.stderr ?? "")") }
            usleep(100_000)
        }
    }

    func send(_ key: String) { _ = try? Run.capture([tmux, "-L", name, "send-keys", "-t", name, key]) }

    func capture() throws -> String { try Run.capture([tmux, "-L", name, "capture-pane", "-p", "-t", name]).stdout }

    func waitFor(_ text: String, timeout: TimeInterval = 15) throws -> String {
        try waitFor(timeout: timeout, what: text) { $0.contains(text) }
    }

    func waitFor(timeout: TimeInterval = 15, what: String = "condition", _ test: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var screen = ""
        while Date() < deadline {
            screen = try capture()
            if test(screen) { return screen }
            usleep(100_000)
        }
        throw TestSupportError("the screen did not show \(what) in \(Int(timeout)) s:\n\(screen)")
    }

    func close() { _ = try? Run.capture([tmux, "-L", name, "kill-server"]) }
}
