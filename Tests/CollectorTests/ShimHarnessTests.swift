import Collector
import Foundation
import Glibc
import RingFormat
import SessionStore
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
    var stacks: [UInt32: [UInt64]] {
        var s: [UInt32: [UInt64]] = [:]
        for case .stack(let id, let frames, _) in events { s[id] = frames }
        return s
    }

    func frames(of a: Allocation) -> [UInt64] {
        if case .shim(let id) = a.stack { return stacks[id] ?? [] }
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
        _ path: String, arguments: [String] = [], environment: [String: String] = [:], preload: Bool = true,
        killAfter: Duration? = nil, timeout: Duration = .seconds(60), whileRunning: ((Int32) throws -> Void)? = nil
    ) throws -> ShimRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        if preload { env["LD_PRELOAD"] = try BuildProducts.shim }
        env["LEAKSHIM_COLLECTOR_PID"] = String(getpid())
        for (k, v) in environment { env[k] = v }
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

        let mapping = try RingMapping.waitForRing(pid: pid, timeout: .seconds(10))
        let reader = RingReader(mapping: mapping)
        try reader.attach(mode: .launch)
        var events: [Event] = []
        let start = ContinuousClock.now
        var killed = false
        while p.isRunning {
            try reader.drain { events.append($0) }
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
        let unreadable = try reader.drainToEnd { events.append($0) }
        group.wait()
        let signaled = p.terminationReason == .uncaughtSignal
        return ShimRun(
            pid: pid, events: events, stdout: String(decoding: outData.data, as: UTF8.self),
            stderr: String(decoding: errData.data, as: UTF8.self), status: signaled ? -p.terminationStatus : p.terminationStatus,
            counters: reader.counters, info: reader.info, unreadableBytes: unreadable)
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
        let pidFile = program.directory.appendingPathComponent("pid").path
        let goFile = program.directory.appendingPathComponent("go").path
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "\"$0\" \"$1\" \"$2\"; true", program.path, pidFile, goFile]
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        env["LEAKSHIM_COLLECTOR_PID"] = String(getpid())
        shell.environment = env
        try shell.run()
        defer {
            FileManager.default.createFile(atPath: goFile, contents: nil)
            shell.waitUntilExit()
        }
        let grandchild = try waitForPID(in: pidFile)
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
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = try BuildProducts.shim
        env["LEAKSHIM_COLLECTOR_PID"] = String(getpid())
        env["LEAKSHIM_DISABLE"] = "1"
        p.environment = env
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
