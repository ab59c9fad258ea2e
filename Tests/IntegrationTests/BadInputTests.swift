import Foundation
import TestSupport
import XCTest

/// Every bad input gets one clear line on stderr and a non-zero exit, and loses nothing collected.
final class BadInputTests: XCTestCase {
    private func expectOneLineError(_ argv: [String], contains text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try Run.capture(argv)
        XCTAssertNotEqual(r.status, 0, "exit status", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), "stderr: \(r.stderr)", file: file, line: line)
    }

    func testMissingAndNonExecutablePrograms() throws {
        let lc = try BuildProducts.leakcollect
        let out = Pipeline.sessionPath("bad")
        try expectOneLineError([lc, "-o", out, "--", "/nonexistent/app"], contains: "leakcollect: no such program: /nonexistent/app")
        try expectOneLineError([lc, "-o", out, "--", "no-such-program-anywhere"], contains: "no such program: no-such-program-anywhere")
        let plain = Scratch.directory.appendingPathComponent("not-a-program-\(getpid())").path
        FileManager.default.createFile(atPath: plain, contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o644])
        try expectOneLineError([lc, "-o", out, "--", plain], contains: "\(plain) is not executable")
        try expectOneLineError([lc, "-o", out, "--", "/tmp"], contains: "/tmp is a directory")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no session is written when nothing ran")
    }

    func testAnUnwritableSessionPathFailsBeforeTheProgramRuns() throws {
        let marker = Scratch.directory.appendingPathComponent("ran-\(getpid())").path
        try expectOneLineError(
            [try BuildProducts.leakcollect, "-o", "/nonexistent-dir/x.leaks", "--", "/usr/bin/touch", marker],
            contains: "leakcollect: cannot create session file /nonexistent-dir/x.leaks: no such directory /nonexistent-dir")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the program must not have run")
    }

    func testEmptyAndDirectoryOutputPathsAndDevicesAreRefusedBeforeTheProgramRuns() throws {
        let marker = Scratch.directory.appendingPathComponent("ran2-\(getpid())").path
        let lc = try BuildProducts.leakcollect
        let dir = Scratch.directory.path
        try expectOneLineError([lc, "-o", "", "--", "/usr/bin/touch", marker], contains: "the session path is empty")
        try expectOneLineError([lc, "-o", dir + "/", "--", "/usr/bin/touch", marker], contains: "names a directory")
        try expectOneLineError([lc, "-o", dir, "--", "/usr/bin/touch", marker], contains: "exists and is a directory; not replacing it")
        try expectOneLineError([lc, "-o", "/dev/null", "--", "/usr/bin/touch", marker], contains: "exists and is a device; not replacing it")
        try expectOneLineError([lc, "--kernel", "-o", "/dev/null", "--duration", "1s"], contains: "exists and is a device")
        // An option of a program's collection with --kernel is named as given.
        try expectOneLineError([lc, "--kernel", "-o", Pipeline.sessionPath("kopt"), "--sample", "--duration", "1s"], contains: "--sample applies to a program's collection, not to --kernel")
        try expectOneLineError(
            [lc, "--kernel", "-o", Pipeline.sessionPath("kopt"), "--ring-size", "1M", "--sample-bytes", "4096", "--duration", "1s"],
            contains: "--ring-size, --sample-bytes apply to a program's collection, not to --kernel")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the program must not have run")
        var st = stat()
        XCTAssertEqual(stat("/dev/null", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFCHR, "/dev/null is still a device")
    }

    func testOptionValuesOutsideTheirLimitsAreRefusedNotClamped() throws {
        let lc = try BuildProducts.leakcollect
        try expectOneLineError([lc, "--ring-size", "1", "--", "/bin/true"], contains: "--ring-size must be between 64K and 1G")
        try expectOneLineError([lc, "--ring-size", "16T", "--", "/bin/true"], contains: "--ring-size must be between 64K and 1G")
        try expectOneLineError([lc, "--interval", "0.001", "--", "/bin/true"], contains: "--interval must be between 0.01 and 3600")
        try expectOneLineError([lc, "--depth", "0", "--", "/bin/true"], contains: "--depth must be between 1 and 256")
    }

    func testDeadPidsAndPidsWithoutTheShim() throws {
        let lc = try BuildProducts.leakcollect
        try expectOneLineError([lc, "--attach", "999999999", "-o", Pipeline.sessionPath("dead")], contains: "no such process: 999999999")
        try expectOneLineError([lc, "--attach", "999999999", "--bpf", "-o", Pipeline.sessionPath("dead")], contains: "no such process: 999999999")
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate() }
        // Without the shim, --attach says so and traces the process through BPF uprobes instead
        // (BPFModeTests covers what it collects); without the privileges for that, it says what is missing.
        let r = try Run.capture([lc, "--attach", String(sleeper.processIdentifier), "--duration", "1s", "--quiet", "-o", Pipeline.sessionPath("noshim")])
        XCTAssertTrue(r.stderr.contains("pid \(sleeper.processIdentifier) has no leakshim ring: tracing it through BPF uprobes instead"), r.stderr)
        if geteuid() == 0 {
            XCTAssertEqual(r.status, 0, r.stderr)
        } else {
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("--bpf needs CAP_BPF and CAP_PERFMON"), r.stderr)
        }
    }

    func testUnknownOptionsAndMissingCommands() throws {
        let lc = try BuildProducts.leakcollect, lr = try BuildProducts.leakreport
        try expectOneLineError([lc, "--bogus"], contains: "leakcollect: Unknown option '--bogus'")
        try expectOneLineError([lc], contains: "leakcollect: nothing to collect")
        try expectOneLineError([lr, "top", "x.leaks", "--sort", "size"], contains: "leakreport: ")
        try expectOneLineError([lr, "top", "x.leaks", "--min-size", "lots"], contains: "invalid size 'lots'")
        try expectOneLineError([lr, "frobnicate"], contains: "leakreport: ")
    }

    func testMissingTruncatedAndCorruptSessionsThroughTheCLI() throws {
        let lr = try BuildProducts.leakreport
        try expectOneLineError([lr, "top", "/nonexistent.leaks"], contains: "leakreport: no such session file: /nonexistent.leaks")
        let garbage = Pipeline.sessionPath("garbage")
        try Data(repeating: 0x42, count: 3000).write(to: URL(fileURLWithPath: garbage))
        try expectOneLineError([lr, "top", garbage], contains: "is not a leak session")
        // A real session cut in half.
        let prog = try CProgram.build("trunc_src", source: "#include <stdlib.h>\nint main(void){for(int i=0;i<3000;i++)malloc(100+i);return 0;}\n")
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: run.session)[.size] as? UInt64)
        let fh = try XCTUnwrap(FileHandle(forWritingAtPath: run.session))
        try fh.truncate(atOffset: size / 2)
        try fh.close()
        try expectOneLineError([lr, "top", run.session], contains: "is corrupt: truncated")
    }
}
