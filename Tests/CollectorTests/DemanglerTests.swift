import XCTest

@testable import Symbols

/// The demanglers the symbolizer uses, on names taken from real binaries (see FrameNameTests for the
/// same names reached through real programs).
final class DemanglerTests: XCTestCase {
    func testEachLanguageReadsAsItsOwnToolsPrintIt() {
        // Swift, through the Swift runtime's demangler.
        XCTAssertEqual(Demangler.demangle("$s10leak_swift5StoreC3putyySiF"), "leak_swift.Store.put(Swift.Int) -> ()")
        // Rust legacy: the hash is left out; with an LLVM suffix too.
        XCTAssertEqual(Demangler.demangle("_ZN4leak5cache5Store3put17h4a8f028db277098fE"), "leak::cache::Store::put")
        XCTAssertEqual(Demangler.demangle("_ZN4leak5cache5Store3put17h4a8f028db277098fE.llvm.123456"), "leak::cache::Store::put")
        // Rust v0: no crate disambiguators.
        XCTAssertEqual(Demangler.demangle("_RNvNtCsjrHSEGnQ3l9_3std2rt19lang_start_internal"), "std::rt::lang_start_internal")
        // C++, and a C++ name that merely looks Itanium-shaped.
        XCTAssertEqual(Demangler.demangle("_ZN3app5Cache4growEi"), "app::Cache::grow(int)")
        XCTAssertEqual(Demangler.demangle("_ZN4PoolIdE4grabEi"), "Pool<double>::grab(int)")
        // C names, versions and garbage come back as they are (the version dropped).
        XCTAssertEqual(Demangler.demangle("malloc"), "malloc")
        XCTAssertEqual(Demangler.demangle("dlopen@GLIBC_2.2.5"), "dlopen")
        XCTAssertEqual(Demangler.demangle("_Znotmangled"), "_Znotmangled")
        XCTAssertEqual(Demangler.demangle("$snot-swift"), "$snot-swift")
        XCTAssertEqual(Demangler.demangle("_RNv"), "_RNv")
    }
}

/// /tmp/perf-PID.map is written by the traced program: lines that do not parse are skipped, and a
/// later entry for the same start wins (code moved and its memory reused).
final class PerfMapTests: XCTestCase {
    func testParsesEntriesAndSkipsHostileLines() {
        let text = """
            7f0000001000 100 JS:~first /app/a.js:1:1
            0x7f0000002000 0x40 LazyCompile:*second /app/a.js:9:3
            not a line
            7f0000003000 0 empty
            ffffffffffffff00 1000 overflows
            7f0000001000 80 JS:^first /app/a.js:1:1
            7f0000004000 zz bad size
            """
        let map = PerfMap(text: text[...], bytesRead: text.utf8.count)
        XCTAssertEqual(map.lookup(0x7f00_0000_1010)?.name, "JS:^first /app/a.js:1:1")
        XCTAssertEqual(map.lookup(0x7f00_0000_1010)?.offset, 0x10)
        XCTAssertNil(map.lookup(0x7f00_0000_1080), "the later, shorter entry replaced the first")
        XCTAssertEqual(map.lookup(0x7f00_0000_203f)?.name, "LazyCompile:*second /app/a.js:9:3")
        XCTAssertNil(map.lookup(0x7f00_0000_2040))
        XCTAssertNil(map.lookup(0x7f00_0000_3000))
        XCTAssertNil(map.lookup(0xffff_ffff_ffff_ff10))
        XCTAssertNil(map.lookup(0x1000))
    }

    func testAPerfMapThatIsAFIFOIsNotRead() throws {
        // A pid no process has; its map path is a FIFO someone left in /tmp.
        let pid: Int32 = 0x3fff_fff0
        let path = "/tmp/perf-\(pid).map"
        unlink(path)
        XCTAssertEqual(mkfifo(path, 0o600), 0)
        defer { unlink(path) }
        XCTAssertNil(PerfMap.read(pid: pid))
    }
}
