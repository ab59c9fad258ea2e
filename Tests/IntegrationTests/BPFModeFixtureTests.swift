import Foundation
import LeakReport
import TestSupport
import XCTest

/// Whether this machine can run BPF-only mode: root (uprobes and BPF programs) and a kernel with the
/// uprobe PMU. Tests that need it skip with the reason otherwise.
enum BPFModeSupport {
    static func require() throws {
        guard geteuid() == 0 else { throw XCTSkip("BPF-only mode needs root (CAP_BPF and CAP_PERFMON); running as uid \(geteuid())") }
        guard FileManager.default.fileExists(atPath: "/sys/bus/event_source/devices/uprobe/type") else {
            throw XCTSkip("this kernel has no uprobe PMU (/sys/bus/event_source/devices/uprobe)")
        }
    }
}

/// The pipeline's leak fixtures again, each run with `leakcollect --bpf -- PROGRAM` (no shim): the same
/// assertions, so the same exact bytes, blocks, functions and lines as shim mode, where frame pointers
/// exist (the fixtures are built with -fno-omit-frame-pointer).
final class BPFLeakPatternTests: LeakPatternTests {
    override func setUpWithError() throws {
        try BPFModeSupport.require()
        Pipeline.modeOptions = ["--bpf"]
    }

    override func tearDown() { Pipeline.modeOptions = [] }

    /// operator new is libstdc++'s, built without frame pointers: the frame-pointer walk from malloc's
    /// return skips new's caller. BPF-only mode cannot see that frame; what it must do is not hide the
    /// leak, and say where the stack went through code that may have cut it.
    override func testCppNewShowsTheCallerOfNew() throws {
        let prog = try CProgram.build(
            "cpp_new_bpf",
            source: """
                struct Node { char payload[120]; Node *next; };
                Node *build_list(int n) {
                    Node *head = nullptr;
                    for (int i = 0; i < n; i++) { Node *x = new Node(); x->next = head; head = x; }
                    return head;
                }
                static Node *keep_list;
                int main() { keep_list = build_list(10); return 0; }
                """, language: "c++")
        let run = try Pipeline.collect(prog)
        XCTAssertEqual(run.result.status, 0, run.result.stderr)
        let report = try Pipeline.top(run.session)
        XCTAssertEqual(report.session.mode, "bpf")
        let fromNew = report.stacks.filter { $0.frames.first?.function?.hasPrefix("operator new") ?? false }
        XCTAssertEqual(fromNew.reduce(0) { $0 + $1.bytes }, 1280, "\(report.stacks.map { ($0.bytes, $0.frames.compactMap(\.function)) })")
        XCTAssertEqual(fromNew.reduce(0) { $0 + $1.blocks }, 10)
    }
}

/// Every allocator entry point, through uprobes: the shim's exact figures.
final class BPFAllocatorFunctionTests: AllocatorFunctionTests {
    override func setUpWithError() throws {
        try BPFModeSupport.require()
        Pipeline.modeOptions = ["--bpf"]
    }

    override func tearDown() { Pipeline.modeOptions = [] }

    // Declared here so that test discovery on Linux lists the inherited test for this class too.
    override func testEveryAllocatorFunctionIsChargedExactlyToItsCaller() throws { try super.testEveryAllocatorFunctionIsChargedExactlyToItsCaller() }
}
