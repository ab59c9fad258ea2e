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
            [try BuildProducts.leakcollect, "--quiet", "-o", session, "--", node, "--perf-basic-prof", "--interpreted-frames-native-stack", script],
            timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try Pipeline.top(session)
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
}
