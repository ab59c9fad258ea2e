import Foundation
import LeakReport
import TestSupport
import XCTest

/// BPF-only mode on programs started without the shim: attaching to a running one (explicitly, or
/// because it has no ring), one whose binary was deleted, one in its own mount namespace, and the bad
/// input that must end in one line.
final class BPFModeTests: XCTestCase {
    /// Leaks 1 MiB from one function every 100 ms and churns short-lived blocks from another.
    static let leakyServer = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        static void *kept[1024];
        static int n;
        void leak_one(void) { char *p = malloc(1 << 20); memset(p, 1, 4096); kept[n++ % 1024] = p; } // LR-LEAK
        void churn(void) {
            for (int i = 0; i < 100; i++) { char *p = malloc(64 + i); p[0] = (char)i; free(p); }
        }
        int main(void) {
            printf("ready\\n");
            fflush(stdout);
            for (int i = 0; i < 900; i++) { leak_one(); churn(); usleep(100000); }
            return 0;
        }
        """

    override func setUpWithError() throws { try BPFModeSupport.require() }

    private func attach(_ pid: Int32, _ options: [String]) throws -> (session: String, result: Run.Result) {
        let session = Pipeline.sessionPath("bpf-attach")
        let result = try Run.capture([try BuildProducts.leakcollect, "--attach", String(pid), "-o", session] + options)
        return (session, result)
    }

    func testAttachForFiveSecondsReportsTheLeakAndNothingFromTheChurn() throws {
        let prog = try CProgram.build("bpf_server", source: Self.leakyServer)
        let app = try RunningProcess([prog.path])
        defer { app.signal(SIGKILL) }
        try app.waitFor("ready")
        let (session, result) = try attach(app.pid, ["--bpf", "--duration", "5s", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(app.process.isRunning, "detaching must leave the program running")
        let report = try Pipeline.top(session)
        XCTAssertEqual(report.session.mode, "bpf")
        XCTAssertEqual(report.totals.lostEvents, 0)
        let leak = try XCTUnwrap(report.stack(function: "leak_one"), "\(report.stacks.map { $0.userFrame?.function ?? "?" })")
        XCTAssertTrue((44...52).contains(leak.blocks), "about 50 blocks in 5 s, got \(leak.blocks)")
        XCTAssertEqual(leak.bytes, leak.blocks << 20)
        XCTAssertEqual(leak.userFrame?.line, try prog.line(of: "LR-LEAK"))
        XCTAssertEqual(leak.frames.dropFirst().first?.function, "main")
        XCTAssertNil(report.stack(function: "churn"), "every churned block was freed")
        // 1 MiB blocks are mmapped by malloc itself: that mapping is the allocator's, not a leak of its own.
        XCTAssertTrue(report.stacks.allSatisfy { $0.kind == "heap" }, "\(report.stacks.map { ($0.kind, $0.userFrame?.function ?? "?") })")
    }

    func testPlainAttachToAProcessWithoutTheShimPicksBPF() throws {
        let prog = try CProgram.build("bpf_plain", source: Self.leakyServer)
        let app = try RunningProcess([prog.path])
        defer { app.signal(SIGKILL) }
        try app.waitFor("ready")
        let (session, result) = try attach(app.pid, ["--duration", "1s", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("has no leakshim ring: tracing it through BPF uprobes instead"), result.stderr)
        let report = try Pipeline.top(session)
        XCTAssertEqual(report.session.mode, "bpf")
        XCTAssertNotNil(report.stack(function: "leak_one"))
    }

    func testADeletedBinaryStillSymbolizes() throws {
        let prog = try CProgram.build("bpf_deleted", source: Self.leakyServer)
        let app = try RunningProcess([prog.path])
        defer { app.signal(SIGKILL) }
        try app.waitFor("ready")
        try FileManager.default.removeItem(atPath: prog.path)
        let (session, result) = try attach(app.pid, ["--bpf", "--duration", "1s", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try Pipeline.top(session)
        let leak = try XCTUnwrap(report.stack(function: "leak_one"), "\(report.stacks.map { $0.frames.map { $0.function ?? $0.address } })")
        XCTAssertEqual(leak.userFrame?.file, prog.sourcePath)
        XCTAssertEqual(leak.userFrame?.line, try prog.line(of: "LR-LEAK"))
    }

    func testAProgramInItsOwnMountNamespaceFromADirectoryTheHostCannotSeeSymbolizes() throws {
        let prog = try CProgram.build("bpf_unshared", source: Self.leakyServer)
        // A tmpfs mounted only inside the program's namespace: the host sees an empty directory there.
        let hidden = prog.directory.appendingPathComponent("hidden").path
        try FileManager.default.createDirectory(atPath: hidden, withIntermediateDirectories: true)
        let script = "mount -t tmpfs tmpfs \(hidden) && cp \(prog.path) \(hidden)/server && exec \(hidden)/server"
        let app = try RunningProcess(["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script])
        defer { app.signal(SIGKILL) }
        try app.waitFor("ready")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(hidden)/server"), "the host must not see the program's file")
        let (session, result) = try attach(app.pid, ["--bpf", "--duration", "1s", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try Pipeline.top(session)
        let leak = try XCTUnwrap(report.stack(function: "leak_one"), "\(report.stacks.map { $0.frames.map { $0.function ?? $0.address } })")
        XCTAssertEqual(leak.userFrame?.line, try prog.line(of: "LR-LEAK"))
        XCTAssertEqual(leak.userFrame?.module, "\(hidden)/server")
    }

    func testLaunchTracesFromTheFirstAllocationAndExitsWithTheProgramsStatus() throws {
        let prog = try CProgram.build(
            "bpf_launch",
            source: """
                #include <stdlib.h>
                static void *early;
                __attribute__((constructor)) static void before_main(void) { early = malloc(333); } // BL-CTOR
                void *leak(void) { return malloc(4444); } // BL-LEAK
                int main(void) { void *p = leak(); (void)p; free(malloc(10)); return 3; }
                """)
        let run = try Pipeline.collect(prog, extra: ["--bpf"])
        XCTAssertEqual(run.result.status, 3, run.result.stderr)
        // The constructor's block is one the built-in rules suppress (memory kept from before main).
        let report = try Pipeline.top(run.session, ["--no-builtin-suppressions"])
        XCTAssertEqual(report.session.mode, "bpf")
        XCTAssertEqual(report.session.end, "exited with status 3")
        assertLeak(report, function: "leak", bytes: 4444, blocks: 1, program: prog, marker: "BL-LEAK")
        assertLeak(report, function: "before_main", bytes: 333, blocks: 1, program: prog, marker: "BL-CTOR")
    }

    func testAStaticProgramWithItsOwnMallocIsTraced() throws {
        let prog = try CProgram.build(
            "bpf_static",
            source: """
                #include <stdlib.h>
                void *leak(void) { return malloc(2222); } // BS-LEAK
                int main(void) { for (int i = 0; i < 3; i++) leak(); free(malloc(5)); return 0; }
                """, extraFlags: ["-static"])
        let run = try Pipeline.collect(prog, extra: ["--bpf"])
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        assertLeak(try Pipeline.top(run.session), function: "leak", bytes: 3 * 2222, blocks: 3, program: prog, marker: "BS-LEAK")
    }

    // MARK: bad input: one line, non-zero exit

    private func assertOneLineFailure(_ r: Run.Result, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), r.stderr, file: file, line: line)
    }

    func testADeadPid() throws {
        let r = try Run.capture([try BuildProducts.leakcollect, "--attach", "2147483646", "--bpf", "-o", Pipeline.sessionPath("dead")])
        assertOneLineFailure(r, contains: "no such process: 2147483646")
    }

    /// The target watches the first byte of its allocator functions: a uprobe turns it into int3 (0xcc),
    /// so it exits as soon as the first probe is in, while the collector is still placing the others.
    func testATargetThatExitsDuringTheAttach() throws {
        let prog = try CProgram.build(
            "bpf_exits_on_probe",
            source: """
                #define _GNU_SOURCE
                #include <dlfcn.h>
                #include <stdio.h>
                #include <unistd.h>
                int main(void) {
                    const char *names[] = {"malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "mmap", "munmap", "mremap"};
                    volatile unsigned char *code[9];
                    for (int k = 0; k < 9; k++) code[k] = (volatile unsigned char *)dlsym(RTLD_NEXT, names[k]);
                    printf("ready\\n");
                    fflush(stdout);
                    for (int i = 0; i < 300000; i++) {
                        for (int k = 0; k < 9; k++) if (code[k] && *code[k] == 0xcc) _exit(7);
                        usleep(100);
                    }
                    return 1;
                }
                """, extraFlags: ["-ldl"])
        let app = try RunningProcess([prog.path])
        defer { app.signal(SIGKILL) }
        try app.waitFor("ready")
        let session = Pipeline.sessionPath("exits-during-attach")
        let r = try Run.capture([try BuildProducts.leakcollect, "--attach", String(app.pid), "--bpf", "--duration", "3s", "-o", session])
        assertOneLineFailure(r, contains: "pid \(app.pid) exited while the uprobes were being attached; nothing was collected")
        XCTAssertFalse(FileManager.default.fileExists(atPath: session), "no session for a collection that never started")
        XCTAssertFalse(app.process.isRunning)
    }

    func testAStrippedStaticProgramHasNoAllocatorToProbe() throws {
        let prog = try CProgram.build(
            "bpf_stripped", source: "#include <stdlib.h>\nint main(void) { return malloc(5) == 0; }\n", extraFlags: ["-static", "-s"])
        let r = try Run.capture([try BuildProducts.leakcollect, "--bpf", "-o", Pipeline.sessionPath("stripped"), "--", prog.path])
        assertOneLineFailure(r, contains: "is statically linked and has no malloc or free symbol")
        let sleeper = try CProgram.build(
            "bpf_stripped_sleeper", source: "#include <unistd.h>\nint main(void) { sleep(60); return 0; }\n", extraFlags: ["-static", "-s"])
        let running = try RunningProcess([sleeper.path])
        defer { running.signal(SIGKILL) }
        usleep(200_000)
        let a = try Run.capture([try BuildProducts.leakcollect, "--attach", String(running.pid), "--bpf", "-o", Pipeline.sessionPath("stripped")])
        assertOneLineFailure(a, contains: "has no allocator to probe")
    }

    func testAKernelWithoutUprobesIsNamed() throws {
        let prog = try CProgram.build("bpf_nokernel", source: "int main(void) { return 0; }\n")
        var env = ProcessInfo.processInfo.environment
        env["LEAKCOLLECT_SYSFS"] = prog.directory.path
        let r = try Run.capture([try BuildProducts.leakcollect, "--bpf", "-o", Pipeline.sessionPath("nokernel"), "--", prog.path], environment: env)
        assertOneLineFailure(r, contains: "this kernel cannot run BPF-only mode: no uprobe PMU")
    }

    func testAnUnprivilegedCollectorIsToldWhatItLacks() throws {
        let dir = Scratch.directory.appendingPathComponent("bpf-unpriv-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir.path)
        let copy = dir.appendingPathComponent("leakcollect").path
        try FileManager.default.copyItem(atPath: try BuildProducts.leakcollect, toPath: copy)
        let prog = try CProgram.build("bpf_unpriv", source: "int main(void) { return 0; }\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: prog.directory.path)
        let asNobody = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", copy]
        let launch = try Run.capture(asNobody + ["--bpf", "-o", dir.appendingPathComponent("l.leaks").path, "--", prog.path])
        assertOneLineFailure(launch, contains: "--bpf needs CAP_BPF and CAP_PERFMON (or root); this process lacks CAP_BPF and CAP_PERFMON")
        // Our own (root's) process: refused before anything is tried.
        let attach = try Run.capture(asNobody + ["--attach", String(getpid()), "--bpf", "-o", dir.appendingPathComponent("a.leaks").path])
        assertOneLineFailure(attach, contains: "belongs to uid 0, not to you")
    }
}
