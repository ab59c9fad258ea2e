import CollectionRunner
import ShimSource
import Tracking
import Foundation
import Glibc
import RingFormat
import SessionStore
import Vocabulary
import TestSupport
import XCTest

/// What a program run under the shim produced, as a launching collector reads it.
struct ShimRun {
    let pid: Int32
    let events: [Event]
    let stdout: String
    let stderr: String
    /// Exit status, or -signal when a signal ended it.
    let status: Int32
    let counters: RingCounters
    let info: RingInfo
    let unreadableBytes: UInt64

    /// The value of a "label value" line the program printed (0x… hex, or decimal; "(nil)" is 0).
    func value(_ label: String) throws -> UInt64 {
        for line in stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, parts[0] == label else { continue }
            let text = String(parts[1])
            if text == "(nil)" { return 0 }
            if text.hasPrefix("0x"), let v = UInt64(text.dropFirst(2), radix: 16) { return v }
            if let v = UInt64(text) { return v }
        }
        throw TestSupportError("the program printed no \(label) line:\n\(stdout)")
    }

    var allocs: [Allocation] { events.compactMap { if case .alloc(let a) = $0 { return a } else { return nil } } }
    func allocs(at address: UInt64) -> [Allocation] { allocs.filter { $0.address == address } }

    /// Stack id -> frames, from the stack records.
    var stacks: [UInt64: [UInt64]] {
        var s: [UInt64: [UInt64]] = [:]
        for case .stack(let d) in events { s[d.id] = d.frames }
        return s
    }

    func frames(of a: Allocation) -> [UInt64] {
        if case .local(let id) = a.stack { return stacks[id] ?? [] }
        return []
    }

    /// Events without stack and module records: what a single-threaded program did, in order.
    var blockEvents: [Event] {
        events.filter {
            switch $0 {
            case .stack, .module, .moduleUnload: return false
            default: return true
            }
        }
    }
}

/// Runs programs with libleakshim.so preloaded as direct children of the test process, which plays the
/// launching collector: LEAKSHIM_COLLECTOR_PID is our pid, we wait for the ring, attach in launch mode,
/// drain until the program exits, then drain to the end.
enum Shim {
    static func run(
        _ path: String, arguments: [String] = [], environment: [String: String?] = [:],
        killAfter: Duration? = nil, timeout: Duration = .seconds(60), whileRunning: ((Int32) throws -> Void)? = nil,
        sink: ((Event) -> Void)? = nil
    ) throws -> ShimRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        // We are the collector the program hands its ring to (leakhandshake.h).
        let listener = try HandshakeListener()
        var env = try Self.environment(environment)
        if env["LEAKSHIM_COLLECTOR_PID"] != nil { env[LR_HS_ENV] = listener.name }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let outData = DataBox(), errData = DataBox()
        let group = DispatchGroup()
        try p.run()
        let pid = p.processIdentifier
        // Read both pipes while the child runs so neither fills up and blocks it.
        group.enter()
        DispatchQueue.global().async { outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        defer { if p.isRunning { kill(pid, SIGKILL) } }

        let mapping = try handover(listener, pid: pid, timeout: .seconds(10))
        let reader = RingReader(mapping: mapping)
        try reader.attach(mode: .launch)
        var events: [Event] = []
        let keep: (Event) -> Void = sink ?? { events.append($0) }  // a sink sees every event; nothing is kept
        let start = ContinuousClock.now
        var killed = false
        while p.isRunning {
            try reader.drain(keep)
            try whileRunning?(pid)
            if let killAfter, !killed, ContinuousClock.now - start >= killAfter {
                kill(pid, SIGKILL)
                killed = true
            }
            if ContinuousClock.now - start > timeout {
                kill(pid, SIGKILL)
                throw TestSupportError("\(path) still running after \(timeout)")
            }
            _ = reader.sleepUntilData(timeout: .milliseconds(2))
        }
        p.waitUntilExit()
        let unreadable = try reader.drainToEnd(keep)
        group.wait()
        let signaled = p.terminationReason == .uncaughtSignal
        return ShimRun(
            pid: pid, events: events, stdout: String(decoding: outData.data, as: UTF8.self),
            stderr: String(decoding: errData.data, as: UTF8.self), status: signaled ? -p.terminationStatus : p.terminationStatus,
            counters: reader.counters, info: reader.info, unreadableBytes: unreadable)
    }

    /// The ring `pid` hands over to `listener`; throws once it exits first or `timeout` passes. Without
    /// the hand-shake (LEAKSHIM_COLLECTOR_PID removed by the test), the ring is found through /proc.
    static func handover(_ listener: HandshakeListener, pid: Int32, timeout: Duration) throws -> RingMapping {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let h = listener.poll().first(where: { $0.pid == pid }) { return h.mapping }
            if let ring = try? RingMapping.open(pid: pid), ring.flags & LR_FLAG_EXPECT_COLLECTOR == 0 { return ring }
            if !RingMapping.isAlive(pid: pid) {
                if let h = listener.poll().first(where: { $0.pid == pid }) { return h.mapping }
                throw RingError.exitedBeforeRing(pid: pid)
            }
            usleep(500)
        }
        throw TestSupportError("pid \(pid) handed over no ring within \(timeout)")
    }

    /// This process's environment with the shim preloaded and us as the launching collector, then `extra`
    /// applied (a nil value removes the variable).
    static func environment(_ extra: [String: String?] = [:]) throws -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        env["LEAKSHIM_COLLECTOR_PID"] = String(getpid())
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Runtime address ranges of a program's functions: the address it printed as "fn NAME 0x…" plus the
    /// size `nm -S` gives for NAME.
    static func functionRanges(_ program: CProgram, _ run: ShimRun) throws -> [String: Range<UInt64>] {
        let nm = try Run.capture(["/usr/bin/env", "nm", "-S", program.path])
        var sizes: [String: UInt64] = [:]
        for line in nm.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 4, let size = UInt64(f[1], radix: 16) { sizes[String(f[3])] = size }
        }
        var ranges: [String: Range<UInt64>] = [:]
        for line in run.stdout.split(separator: "\n") where line.hasPrefix("fn ") {
            let f = line.split(separator: " ")
            guard f.count == 3, let size = sizes[String(f[1])], f[2].hasPrefix("0x"),
                let addr = UInt64(f[2].dropFirst(2), radix: 16)
            else { throw TestSupportError("bad fn line or no nm size: \(line)") }
            ranges[String(f[1])] = addr..<(addr + size)
        }
        return ranges
    }
}

/// Output a reader thread fills in; read only after the group it signals was waited for.
final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// C snippets the test programs share.
enum CSnippets {
    /// `wait_for_file(path)`: polls up to 20 s for a file the test creates; `write_pid(path)`.
    static let handshake = """
        #include <stdio.h>
        #include <unistd.h>
        static void wait_for_file(const char *path) {
            for (int i = 0; i < 20000 && access(path, F_OK) != 0; i++) usleep(1000);
        }
        static void write_pid(const char *path) {
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            FILE *f = fopen(tmp, "w");
            fprintf(f, "%d\\n", (int)getpid());
            fclose(f);
            rename(tmp, path);
        }

        """
}

final class ShimHarnessTests: XCTestCase {
    /// The launch handshake: the direct child marks its ring as expecting us, and a program that exits at
    /// once still waits until we have opened the ring, so nothing is lost.
    func testShortLivedChildExpectsItsCollectorAndWaitsForIt() throws {
        let program = try CProgram.build("quick", source: """
            #include <stdio.h>
            #include <stdlib.h>
            int main(void) { void *p = malloc(4242); printf("p %p\\n", p); return 0; }
            """)
        let run = try Shim.run(program.path)
        XCTAssertEqual(run.status, 0)
        XCTAssertTrue(run.info.expectsCollector)
        XCTAssertEqual(run.info.pid, run.pid)
        XCTAssertEqual(run.info.dataSize, UInt64(LR_DEFAULT_DATA_SIZE))
        XCTAssertEqual(run.info.maxDepth, LR_DEFAULT_DEPTH)
        let p = try run.value("p")
        XCTAssertEqual(run.allocs(at: p).map(\.size), [4242])
        XCTAssertEqual(run.counters.lostEvents, 0)
        XCTAssertEqual(run.unreadableBytes, 0)
    }

    /// A launched program waits for its collector right after creating the ring, so even one that crashes
    /// at once leaves every record to the collector that mapped the ring.
    func testProgramThatCrashesAtOnceLosesNothing() throws {
        let program = try CProgram.build("crash", source: """
            #include <stdlib.h>
            int main(void) {
                for (int i = 0; i < 3; i++) malloc(3000 + i);
                volatile int *bad = (int *)16;
                return *bad;
            }
            """)
        let run = try Shim.run(program.path)
        XCTAssertEqual(run.status, -SIGSEGV)
        XCTAssertEqual(run.allocs.filter { (3000..<3003).contains($0.size) }.map(\.size), [3000, 3001, 3002])
        XCTAssertEqual(run.counters.lostEvents, 0)
    }

    /// A grandchild inherits LEAKSHIM_COLLECTOR_PID, but its parent is not the collector: it must not wait.
    func testGrandchildDoesNotExpectTheCollector() throws {
        let program = try CProgram.build("grandchild", source: CSnippets.handshake + """
            #include <stdlib.h>
            int main(int argc, char **argv) {
                void *p = malloc(10);
                write_pid(argv[1]);
                wait_for_file(argv[2]);
                free(p);
                return 0;
            }
            """)
        // Only the grandchild gets the shim: a preloaded shell, our direct child, would wait for us.
        let run = try HandshakeProcess(
            program, shell: ["-c", "LD_PRELOAD=\"$0\" \"$1\" \"$2\" \"$3\"; true", try BuildProducts.shim],
            environment: try Shim.environment(["LD_PRELOAD": nil]))
        defer {
            run.go()
            _ = run.finish()
        }
        let grandchild = try run.pid()
        XCTAssertNotEqual(grandchild, run.process.processIdentifier)
        let ring = try RingMapping.open(pid: grandchild)
        XCTAssertEqual(ring.ringPID, grandchild)
        XCTAssertEqual(ring.flags & LR_FLAG_EXPECT_COLLECTOR, 0)
    }

    func testDisabledShimCreatesNoRingAndTheProgramRunsNormally() throws {
        let program = try CProgram.build("disabled", source: """
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <unistd.h>
            int main(void) {
                char *p = malloc(100);
                strcpy(p, "fine");
                usleep(300000);
                printf("%s\\n", p);
                free(p);
                return 0;
            }
            """)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program.path)
        p.environment = try Shim.environment(["LEAKSHIM_DISABLE": "1"])
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        XCTAssertThrowsError(try RingMapping.waitForRing(pid: p.processIdentifier, timeout: .seconds(20))) {
            XCTAssertEqual($0 as? RingError, .exitedBeforeRing(pid: p.processIdentifier))
        }
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        XCTAssertEqual(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), "fine\n")
    }

    /// When the shim cannot set up (here: its ring does not fit under the address-space limit), it steps
    /// aside: no ring, and the program runs as if the shim were not there.
    func testSetupFailureLeavesAPassThrough() throws {
        let program = try CProgram.build("limited", source: CSnippets.handshake + """
            #include <stdlib.h>
            #include <string.h>
            int main(int argc, char **argv) {
                (void)argc;
                char *p = malloc(100);
                strcpy(p, "fine");
                void *q = realloc(malloc(10), 100000);
                write_pid(argv[1]);
                wait_for_file(argv[2]);
                printf("%s\\n", p);
                free(p);
                free(q);
                return 0;
            }
            """)
        // A 1 GiB ring needs 2 GiB of address space; the limit is 1.5 GiB.
        let run = try HandshakeProcess(
            program, shell: ["-c", "ulimit -v 1500000; exec \"$0\" \"$1\" \"$2\""],
            environment: try Shim.environment(["LEAKSHIM_RING_SIZE": "1g", "LEAKSHIM_COLLECTOR_PID": nil]))
        let pid = try run.pid()
        XCTAssertEqual(pid, run.process.processIdentifier, "exec kept the pid")
        XCTAssertThrowsError(try RingMapping.open(pid: pid)) { XCTAssertEqual($0 as? RingError, .noRing(pid: pid)) }
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        XCTAssertTrue(maps.contains("libleakshim.so"), "the shim was loaded")
        run.go()
        XCTAssertEqual(run.finish(), "fine\n")
        XCTAssertEqual(run.process.terminationStatus, 0)
    }
}

/// A program that follows `CSnippets.handshake`: started with a pid file and a go file as its last two
/// arguments, it reports its pid and waits, so a test can look at it before it goes on.
final class HandshakeProcess {
    let process = Process()
    let pidFile: String
    let goFile: String
    private let out = Pipe()

    /// Runs the program, or `/bin/sh` with `shell` followed by the program and the two files.
    init(_ program: CProgram, shell: [String]? = nil, environment: [String: String]) throws {
        pidFile = program.directory.appendingPathComponent("pid").path
        goFile = program.directory.appendingPathComponent("go").path
        if let shell {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = shell + [program.path, pidFile, goFile]
        } else {
            process.executableURL = URL(fileURLWithPath: program.path)
            process.arguments = [pidFile, goFile]
        }
        process.environment = environment
        process.standardOutput = out
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    func pid() throws -> Int32 { try waitForPID(in: pidFile) }

    func go() { FileManager.default.createFile(atPath: goFile, contents: nil) }

    /// Waits for the exit; what the program printed.
    func finish() -> String {
        process.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Lets it go on and reads `reader` until it has exited and the ring is drained.
    func goAndCollect(_ reader: RingReader) throws -> [Event] {
        go()
        var events: [Event] = []
        while process.isRunning {
            try reader.drain { events.append($0) }
            _ = reader.sleepUntilData(timeout: .milliseconds(2))
        }
        _ = try reader.drainToEnd { events.append($0) }
        return events
    }
}

/// Reads the pid a test program wrote with `write_pid`, waiting up to 20 s for it.
func waitForPID(in path: String) throws -> Int32 {
    for _ in 0..<20000 {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            return pid
        }
        usleep(1000)
    }
    throw TestSupportError("no pid in \(path)")
}
