import Foundation
import LeakReport
import TestSupport
import XCTest

/// Real programs in Swift, Rust and C++, built with debug info and run under leakcollect: every frame
/// a user wrote shows its demangled name, file and line, with inlined calls as frames of their own.
final class FrameNameTests: XCTestCase {
    func testSwiftGenericClosureAndClassMethodAreDemangledWithTheirLines() throws {
        guard let swiftc = Toolchains.swiftc else { throw XCTSkip("swiftc is not installed (the project's own toolchain, /opt/swift)") }
        let prog = try CProgram.build(
            "leak_swift",
            source: """
                final class Node { let payload: [UInt8]; init(_ n: Int) { payload = [UInt8](repeating: 1, count: n) } }
                var keep: [Node] = []
                @inline(never) func make<T>(_ body: () -> T) -> T {
                    return body() // GENERIC
                }
                final class Store {
                    @inline(never) func put(_ n: Int) {
                        let node = make { Node(n) } // CLOSURE
                        keep.append(node)
                    }
                }
                let store = Store()
                for _ in 0..<10 { store.put(1000) } // MAIN
                """, fileExtension: "swift"
        ) { [swiftc, "-g", "-Onone", "-o", $1, $0] }
        let c = try Pipeline.collect(prog)
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        let report = try Pipeline.top(c.session)
        // The Node objects themselves: swift_allocObject from the closure's Node(n).
        guard let s = report.stacks.first(where: { $0.blocks == 10 && $0.frames.contains { $0.function?.hasPrefix("closure #1") == true } })
        else { return XCTFail("no stack of 10 Nodes from the closure: \(report.stacks.map { $0.frames.compactMap(\.function) })") }
        // Node.init and its allocating entry come first (their payload array is allocated there).
        let user = Array(s.frames.filter { $0.file == prog.sourcePath }.suffix(4))
        XCTAssertEqual(
            user.map { $0.function ?? "?" },
            [
                "closure #1 () -> leak_swift.Node in leak_swift.Store.put(Swift.Int) -> ()",
                "leak_swift.make<A>(() -> A) -> A",
                "leak_swift.Store.put(Swift.Int) -> ()",
                "main",
            ])
        XCTAssertEqual(user.map { $0.line ?? 0 }, try ["CLOSURE", "GENERIC", "CLOSURE", "MAIN"].map(prog.line(of:)))
        // JSON keeps the binary's own spelling next to the readable one.
        XCTAssertEqual(user.first { $0.function == "leak_swift.Store.put(Swift.Int) -> ()" }?.systemName, "$s10leak_swift5StoreC3putyySiF")
        XCTAssertEqual(user.first { $0.function == "leak_swift.make<A>(() -> A) -> A" }?.systemName, "$s10leak_swift4makeyxxyXElF")
        XCTAssertNil(user.first { $0.function == "main" }?.systemName)
        XCTAssertFalse(try Pipeline.text(c.session).contains("$s10leak_swift"), "text shows demangled names only")
    }

    /// One Rust program built twice, with the legacy mangling (rustc's default for the user's crate)
    /// and with v0; the standard library is v0-mangled either way. Optimized, so `vec!` and `Vec::push`
    /// are inlined into `Store::put`, whose frame keeps the user's own line.
    func testRustLegacyAndV0NamesAndAnInlinedVecPushAtTheUsersLine() throws {
        guard let rustc = Toolchains.rustc else { throw XCTSkip("rustc is not installed (tools/setup.sh installs Debian's)") }
        let source = """
            mod cache {
                pub struct Store { pub items: Vec<Vec<u8>> }
                impl Store {
                    #[inline(never)]
                    pub fn put(&mut self, n: usize) {
                        let v = vec![7u8; n];
                        self.items.push(v); // PUSH
                    }
                }
            }
            fn main() {
                let mut s = cache::Store { items: Vec::new() };
                for i in 0..100 { s.put(100 + i); }
                std::mem::forget(s);
            }
            """
        for (mangling, put, putSystemPrefix) in [
            ("legacy", "leak::cache::Store::put", "_ZN4leak5cache5Store3put17h"), ("v0", "<leak::cache::Store>::put", "_RNvMNtCs"),
        ] {
            // Legacy is the default for the user's crate (naming it needs -Z unstable-options).
            let prog = try CProgram.build("leak", source: source, fileExtension: "rs") {
                [rustc, "-g", "-C", "opt-level=1"] + (mangling == "v0" ? ["-C", "symbol-mangling-version=v0"] : []) + ["-o", $1, $0]
            }
            let c = try Pipeline.collect(prog)
            XCTAssertEqual(c.result.status, 0, c.result.stderr)
            let report = try Pipeline.top(c.session)
            // The outer Vec's buffer, grown by push: 4, 8, …, 128 pointers-and-lengths, the last one live.
            guard let s = report.stacks.first(where: { $0.frames.contains { $0.function?.hasSuffix("Vec<T,A>::push") == true || $0.function == "<alloc::vec::Vec<alloc::vec::Vec<u8>>>::push" } })
            else { return XCTFail("\(mangling): no stack through Vec::push: \(report.stacks.map { $0.frames.compactMap(\.function) })") }
            guard let pushIndex = s.frames.firstIndex(where: { $0.function?.contains("::push") == true && $0.function?.contains("grow") == false })
            else { return XCTFail("\(mangling): no push frame") }
            let push = s.frames[pushIndex]
            XCTAssertTrue(push.inlined, "\(mangling): push is inlined")
            XCTAssertEqual(push.file.map { URL(fileURLWithPath: $0).pathComponents.suffix(4).joined(separator: "/") }, "alloc/src/vec/mod.rs")
            // The physical frame after the inlined ones is the user's, at the user's line.
            let caller = try XCTUnwrap(s.frames[pushIndex...].first { !$0.inlined })
            XCTAssertEqual(caller.function, put, mangling)
            XCTAssertEqual(caller.file, prog.sourcePath, mangling)
            XCTAssertEqual(caller.line, try prog.line(of: "PUSH"), mangling)
            XCTAssertEqual(caller.systemName?.hasPrefix(putSystemPrefix), true, "\(mangling): \(caller.systemName ?? "nil")")
            XCTAssertFalse(caller.function?.contains("::h") == true, "no legacy hash in \(caller.function ?? "")")
            // Every frame of the inlined run shares the physical frame's address.
            XCTAssertEqual(Set(s.frames[pushIndex...].prefix { $0.inlined }.map(\.address)), [caller.address])
            // The standard library's v0 names read as rustfilt prints them.
            let lang = try XCTUnwrap(s.frames.first { $0.function == "std::rt::lang_start_internal" }, mangling)
            XCTAssertEqual(lang.systemName?.hasPrefix("_RNvNtCs"), true)
            XCTAssertEqual(lang.systemName?.hasSuffix("_3std2rt19lang_start_internal"), true)
        }
    }

    func testCxxTemplateLambdaAndInlinedHelper() throws {
        let prog = try CProgram.build(
            "cxxnames",
            source: """
                #include <cstdlib>
                #include <vector>
                template <typename T> struct Pool {
                    T* grab(int n) { return static_cast<T*>(std::malloc(sizeof(T) * n)); } // TEMPLATE
                };
                static inline __attribute__((always_inline)) void* helper(int n) {
                    return std::malloc(n); // HELPER
                }
                std::vector<void*> keep;
                int main() {
                    keep.reserve(100);
                    Pool<double> pool;
                    for (int i = 0; i < 3; i++) keep.push_back(pool.grab(4)); // CALL-TEMPLATE
                    auto lam = [](int n) { return std::malloc(n); }; // LAMBDA
                    for (int i = 0; i < 5; i++) keep.push_back(lam(7)); // CALL-LAMBDA
                    for (int i = 0; i < 7; i++) keep.push_back(helper(11)); // CALL-HELPER
                    return 0;
                }
                """, language: "c++")
        let c = try Pipeline.collect(prog)
        XCTAssertEqual(c.result.status, 0, c.result.stderr)
        let report = try Pipeline.top(c.session)
        func userFrames(bytes: UInt64) throws -> [TopJSON.Frame] {
            let s = try XCTUnwrap(report.stacks.first { $0.bytes == bytes }, "no stack of \(bytes) bytes")
            return s.frames.filter { $0.file == prog.sourcePath }
        }
        let template = try userFrames(bytes: 3 * 32)
        XCTAssertEqual(template.map { $0.function ?? "?" }, ["Pool<double>::grab(int)", "main"])
        XCTAssertEqual(template.map { $0.line ?? 0 }, try ["TEMPLATE", "CALL-TEMPLATE"].map(prog.line(of:)))
        XCTAssertEqual(template.first?.systemName, "_ZN4PoolIdE4grabEi")
        let lambda = try userFrames(bytes: 5 * 7)
        XCTAssertEqual(lambda.map { $0.function ?? "?" }, ["main::{lambda(int)#1}::operator()(int) const", "main"])
        XCTAssertEqual(lambda.map { $0.line ?? 0 }, try ["LAMBDA", "CALL-LAMBDA"].map(prog.line(of:)))
        let helper = try userFrames(bytes: 7 * 11)
        // DWARF names an inlined static function without its parameters (it has no linkage name).
        XCTAssertEqual(helper.map { $0.function ?? "?" }, ["helper", "main"])
        XCTAssertEqual(helper.map(\.inlined), [true, false])
        XCTAssertEqual(helper.map { $0.line ?? 0 }, try ["HELPER", "CALL-HELPER"].map(prog.line(of:)))
        XCTAssertEqual(helper[0].address, helper[1].address)
        XCTAssertNil(helper[0].offset, "an inlined call has no offset of its own")
        let text = try Pipeline.text(c.session)
        XCTAssertTrue(text.contains(" helper (inlined) [cxxnames] \(prog.sourcePath):\(try prog.line(of: "HELPER"))\n"), text)
    }
}
