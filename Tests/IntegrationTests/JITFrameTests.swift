import Foundation
import LeakReport
import TestSupport
import XCTest

/// JIT-compiled code has no module: its frames are named through the perf map the runtime writes.
final class JITFrameTests: XCTestCase {
    /// node with `--perf-basic-prof` (the map) and `--interpreted-frames-native-stack` (each
    /// interpreted JS function gets its own copy of the interpreter entry in JIT memory, as perf
    /// users run it), calling a native addon that leaks.
    func testNodeFramesAreNamedThroughItsPerfMap() throws {
        guard let node = Toolchains.node else { throw XCTSkip("node is not installed (tools/setup.sh installs Debian's nodejs)") }
        let include = ["/usr/include/node", "/usr/local/include/node"].first { FileManager.default.fileExists(atPath: $0 + "/node_api.h") }
        guard let include else { throw XCTSkip("node's headers (node_api.h) are not installed (tools/setup.sh installs libnode-dev with Debian's nodejs)") }
        let addon = try CProgram.build(
            "leakaddon",
            source: """
                #include <node_api.h>
                #include <stdlib.h>
                #include <string.h>
                static napi_value Leak(napi_env env, napi_callback_info info) {
                    size_t argc = 1;
                    napi_value argv[1];
                    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
                    int64_t n = 0;
                    napi_get_value_int64(env, argv[0], &n);
                    char *p = malloc((size_t)n); // LEAK
                    memset(p, 1, (size_t)n);
                    return NULL;
                }
                NAPI_MODULE_INIT() {
                    napi_value fn;
                    napi_create_function(env, "leak", NAPI_AUTO_LENGTH, Leak, NULL, &fn);
                    napi_set_named_property(env, exports, "leak", fn);
                    return exports;
                }
                """, extraFlags: ["-I\(include)"], sharedObject: true)
        // require() loads native code only from a .node file.
        let module = addon.directory.appendingPathComponent("leakaddon.node").path
        try FileManager.default.moveItem(atPath: addon.path, toPath: module)
        let script = addon.directory.appendingPathComponent("leak.js").path
        try """
            const addon = require(\(String(reflecting: module)));
            function leakyCaller(i) { addon.leak(1000 + i); } // CALLER
            for (let i = 0; i < 20; i++) leakyCaller(0);

            """.write(toFile: script, atomically: true, encoding: .utf8)
        let session = Pipeline.sessionPath("node")
        let r = try Run.capture(
            [
                try BuildProducts.leakcollect, "--quiet", "-o", session, "--", node, "--perf-basic-prof", "--interpreted-frames-native-stack",
                // --perf-basic-prof also writes V8's log, by default into the working directory.
                "--logfile=\(addon.directory.path)/v8.log", "--no-logfile-per-isolate", script,
            ],
            timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try Pipeline.top(session)
        defer { report.session.pid.map { _ = unlink("/tmp/perf-\($0).map") } }
        // V8 tiers leakyCaller up while the loop runs (interpreted "~", then Sparkplug "^"), so the
        // addon's 20 blocks come from a few stacks; each names its JS caller.
        let stacks = report.stacks.filter { $0.frames.first?.function == "Leak" }
        XCTAssertEqual(stacks.reduce(0) { $0 + $1.blocks }, 20)
        XCTAssertEqual(stacks.reduce(0) { $0 + $1.bytes }, 20 * 1000)
        for s in stacks {
            XCTAssertEqual(s.frames.first?.file, addon.sourcePath)
            XCTAssertEqual(s.frames.first?.line, try addon.line(of: "LEAK"))
            // Between the addon and the JS caller: V8's own C++ frames, from node's .symtab.
            XCTAssertTrue(s.frames.contains { $0.function?.hasPrefix("v8::internal::Builtin_HandleApiCall") == true })
            // "JS:~NAME FILE:LINE:COLUMN", as V8 logs it.
            let caller = try XCTUnwrap(
                s.frames.first { $0.function?.contains("leakyCaller \(script):2:") == true }, "\(s.frames.map { $0.function ?? "?" })")
            XCTAssertEqual(caller.module, "[jit]")
            XCTAssertNil(caller.buildID)
            XCTAssertTrue(caller.function?.hasPrefix("JS:") == true, caller.function ?? "")
        }
        let text = try Pipeline.text(session, ["--top", "50"])
        XCTAssertTrue(text.contains("leakyCaller \(script):2:"), text)
        XCTAssertTrue(text.contains(" [jit]\n"), text)
    }

    /// The smallest JIT there is: a C program copies a function that calls malloc into anonymous
    /// executable memory and runs it, with and without writing a perf map for it. With the map the
    /// frame is named; without, it is `[jit]` (the program still runs while a batch is symbolized, so
    /// its mappings show the code is anonymous), never `[unknown]`.
    func testAHandMadeJITIsNamedThroughItsPerfMapOrShownAsJIT() throws {
        let prog = try CProgram.build(
            "tinyjit",
            source: """
                #include <stdio.h>
                #include <stdlib.h>
                #include <string.h>
                #include <sys/mman.h>
                #include <unistd.h>
                /* push rbp; mov rbp,rsp; mov rax,rdi; mov rdi,rsi; call rax; pop rbp; ret */
                static const unsigned char code[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0xff, 0xd0, 0x5d, 0xc3};
                void *keep[8];
                int main(int argc, char **argv) {
                    unsigned char *jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                    if (jit == MAP_FAILED) return 1;
                    memcpy(jit, code, sizeof code);
                    if (argc > 1) {
                        char path[64];
                        snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
                        FILE *f = fopen(path, "w");
                        if (!f) return 2;
                        fprintf(f, "%lx %zx jit_leaker\\n", (unsigned long)jit, sizeof code);
                        fclose(f);
                    }
                    void *(*call)(void *(*)(size_t), size_t) = (void *(*)(void *(*)(size_t), size_t))jit;
                    for (int i = 0; i < 4; i++) keep[i] = call(malloc, 72); // CALL-JIT
                    sleep(2); /* batches are cut (every 0.2 s) while the JIT memory is still mapped */
                    return 0;
                }
                """)
        for withMap in [true, false] {
            let c = try Pipeline.collect(prog, withMap ? ["map"] : [], extra: ["--interval", "0.2"])
            XCTAssertEqual(c.result.status, 0, c.result.stderr)
            let report = try Pipeline.top(c.session)
            defer { report.session.pid.map { _ = unlink("/tmp/perf-\($0).map") } }
            let s = try XCTUnwrap(report.stacks.first { $0.bytes == 4 * 72 }, "no stack of the JIT's 4 blocks")
            let jit = try XCTUnwrap(s.frames.first { $0.module == "[jit]" }, "\(s.frames.map { $0.function ?? $0.module ?? "?" })")
            XCTAssertEqual(jit.function, withMap ? "jit_leaker" : nil)
            // The return address after `call rax`, 12 bytes into the code.
            XCTAssertEqual(jit.offset, withMap ? 12 : nil)
            // The frame-pointer chain the code keeps leads the unwinder back into main.
            XCTAssertEqual(s.frames.first { $0.function == "main" }?.line, try prog.line(of: "CALL-JIT"))
            let text = try Pipeline.text(c.session)
            XCTAssertTrue(text.contains(withMap ? " jit_leaker+0xc [jit]\n" : " [jit]\n"), text)
        }
    }
}
