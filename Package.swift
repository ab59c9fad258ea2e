// swift-tools-version:6.1
import PackageDescription

/// Absolute path of this package, for the shim's linker (see tools/ld-as-needed).
let root = Context.packageDirectory

let package = Package(
    name: "LeakToolkit",
    products: [
        .library(name: "leakshim", type: .dynamic, targets: ["CInterpose"]),
        .executable(name: "leakcollect", targets: ["leakcollect"]),
        .executable(name: "leakreport", targets: ["leakreport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // pprof output; profile.pb.swift is generated from profile.proto and committed (tools/gen-pprof-proto.sh).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // The ring's record layout, shared by the shim and the collector (header only).
        .target(name: "RingFormat", path: "Sources/Collector/RingFormat"),

        // libleakshim.so: preloaded into the traced program. Hot-path C, optimized even in debug builds.
        // -nostartfiles and the as-needed linker keep the Swift runtime out of the traced process.
        .target(
            name: "CInterpose",
            dependencies: ["RingFormat"],
            cSettings: [
                .define("_GNU_SOURCE"),
                .unsafeFlags(["-O2", "-fno-omit-frame-pointer", "-momit-leaf-frame-pointer", "-fvisibility=hidden", "-ftls-model=initial-exec", "-Wall", "-Wextra"]),
            ],
            linkerSettings: [
                .linkedLibrary("unwind"),
                .linkedLibrary("dl"),
                .unsafeFlags(["-nostartfiles", "-use-ld=\(root)/tools/ld-as-needed"]),
            ]
        ),

        // The collector, in modules named for their job (Sources/Collector/*).
        // The shared vocabulary: the event model every source feeds, kinds, counters, clocks, /proc readers.
        .target(name: "Vocabulary", dependencies: ["CMalloc"], path: "Sources/Collector/Vocabulary"),
        // glibc's <malloc.h>: how this project's own processes tune their malloc.
        .systemLibrary(name: "CMalloc", path: "Sources/Collector/CMalloc"),

        // The session file: schema, writer and reader, shared by every source and by the reports.
        .target(
            name: "SessionStore",
            dependencies: [
                "Vocabulary", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            path: "Sources/Collector/SessionStore",
            // The writer interns millions of stack-tree nodes on its own thread; nothing in it is shared.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),

        // Events in, batches out: live blocks, regions, modules, stacks, per-stack totals and peaks.
        // No ring, no kernel, no SQL.
        .target(
            name: "Tracking", dependencies: ["Vocabulary", "SessionStore"], path: "Sources/Collector/Tracking",
            // The per-event path runs millions of times a second; the tracker is single-threaded by
            // design, so the dynamic exclusivity checks on its properties buy nothing there.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),

        // elfutils (libdw/libdwfl) for symbols and DWARF lines, and the C++ demangler.
        .systemLibrary(name: "CLibDW", path: "Sources/Collector/CLibDW", pkgConfig: "libdw", providers: [.apt(["libdw-dev"])]),

        // One symbolizer interface: user space through libdwfl, the kernel through kallsyms.
        .target(
            name: "Symbols", dependencies: ["Vocabulary", "SessionStore", "Tracking", "CLibDW", "CZlib"], path: "Sources/Collector/Symbols",
            linkerSettings: [.linkedLibrary("stdc++")]),

        // The one collection runner every mode plugs its source into; stop signals, errors, host facts.
        .target(
            name: "CollectionRunner", dependencies: ["Vocabulary", "SessionStore", "Tracking", "Symbols"], path: "Sources/Collector/Runner"),

        // The shim's ring as a source: finding and mapping it, reading it, launching and attaching.
        .target(
            name: "ShimSource", dependencies: ["RingFormat", "Vocabulary", "SessionStore", "Tracking", "CollectionRunner"],
            path: "Sources/Collector/ShimSource"),

        // Kernel side: the kernel's tables in the session (read by the reports), and the BPF source.
        .target(
            name: "KernelSession", dependencies: ["Vocabulary", "SessionStore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Sources/KernelSide/Session"),
        .systemLibrary(name: "CLibBPF", path: "Sources/KernelSide/CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .plugin(name: "BPFCompile", capability: .buildTool(), path: "tools/plugins/BPFCompile"),
        // Every BPF object of this build (bpf/*.bpf.c, compiled and embedded by BPFCompile), how they are
        // opened, configured and loaded, libbpf's diagnostics and the capabilities tracing needs.
        .target(name: "BPFSupport", dependencies: ["CLibBPF", "Vocabulary"], path: "Sources/KernelSide/BPFSupport", plugins: ["BPFCompile"]),
        .target(
            name: "KernelSide",
            dependencies: ["Vocabulary", "SessionStore", "Tracking", "Symbols", "CollectionRunner", "KernelSession", "CLibBPF", "BPFSupport"],
            path: "Sources/KernelSide/Source"),

        // A fork that waits for its parent's word before it execs: BPF-only launch attaches in between.
        .target(name: "PausedSpawn", path: "Sources/Collector/PausedSpawn"),
        // One BPF link for many uprobes (uprobe_multi), which this libbpf does not wrap.
        .target(name: "UprobeMultiLink", path: "Sources/Collector/UprobeMultiLink"),
        // BPF-only mode: uprobes on the allocator of a process started without the shim, as an event source.
        .target(
            name: "UprobeSource",
            dependencies: [
                "Vocabulary", "SessionStore", "Tracking", "CollectionRunner", "ShimSource", "BPFSupport", "CLibBPF", "CLibDW", "PausedSpawn", "UprobeMultiLink",
            ],
            path: "Sources/Collector/UprobeSource"),

        // What both CLIs share: one-line errors and exit codes.
        .target(
            name: "CLISupport",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Collector/CLISupport"
        ),

        // Reads sessions, sorts and filters, renders text and JSON.
        .target(name: "LeakReport", dependencies: ["Vocabulary", "SessionStore", "KernelSession", "ReportFormats"], exclude: ["Formats"]),

        // zlib: gzip for pprof files, CRC-32 for .gnu_debuglink files.
        .systemLibrary(name: "CZlib", path: "Sources/Collector/CZlib", providers: [.apt(["zlib1g-dev"])]),

        // The formats and analyses that are pure functions of a profile model (pprof, folded stacks,
        // flame graphs, growth, diff, churn, peak, the live view's screen). Knows no session store.
        .target(
            name: "ReportFormats",
            dependencies: ["CZlib", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Sources/LeakReport/Formats",
            exclude: ["Pprof/profile.proto", "FORMATS.md"]
        ),

        .executableTarget(
            name: "leakcollect",
            dependencies: [
                "Vocabulary", "SessionStore", "CollectionRunner", "ShimSource", "LeakReport", "CLISupport", "KernelSide", "UprobeSource",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "leakreport",
            dependencies: [
                "LeakReport", "ReportFormats", "CLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Measures the symbolizer on many distinct stacks over a real binary (tools/bench/symbols.sh).
        .executableTarget(
            name: "symbench", dependencies: ["Symbols", "Tracking", "Vocabulary", "SessionStore"], path: "tools/bench/symbench"),

        // Times the report formats on a synthetic 131k-stack profile (tools/bench/formats/main.swift).
        .executableTarget(name: "formats-bench", dependencies: ["ReportFormats"], path: "tools/bench/formats"),

        // Compiles and runs the small C/C++ programs the tests assert on; finds this build's products.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "CollectorTests",
            dependencies: [
                "Vocabulary", "Tracking", "Symbols", "ShimSource", "CollectionRunner", "RingFormat", "SessionStore", "TestSupport", "UprobeSource",
                "CLibBPF",
            ]),
        .testTarget(
            name: "LeakReportTests",
            dependencies: ["LeakReport", "Vocabulary", "SessionStore", "KernelSession", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "KernelSideTests",
            dependencies: [
                "KernelSide", "KernelSession", "Vocabulary", "Tracking", "CollectionRunner", "SessionStore", "LeakReport", "TestSupport",
                "CLibBPF", .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        .testTarget(name: "ReportFormatsTests", dependencies: ["ReportFormats", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Vocabulary", "SessionStore", "LeakReport", "ReportFormats", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
