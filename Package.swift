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
        .target(name: "RingFormat"),

        // libleakshim.so: preloaded into the traced program. Hot-path C, optimized even in debug builds.
        // -nostartfiles and the as-needed linker keep the Swift runtime out of the traced process.
        .target(
            name: "CInterpose",
            dependencies: ["RingFormat"],
            cSettings: [
                .define("_GNU_SOURCE"),
                .unsafeFlags(["-O2", "-fno-omit-frame-pointer", "-fvisibility=hidden", "-ftls-model=initial-exec", "-Wall", "-Wextra"]),
            ],
            linkerSettings: [
                .linkedLibrary("unwind"),
                .linkedLibrary("dl"),
                .unsafeFlags(["-nostartfiles", "-use-ld=\(root)/tools/ld-as-needed"]),
            ]
        ),

        // elfutils (libdw/libdwfl) for symbols and DWARF lines, and the C++ demangler.
        .systemLibrary(name: "CLibDW", pkgConfig: "libdw", providers: [.apt(["libdw-dev"])]),

        // The session file: schema, writer and reader, shared by every source and by the reports.
        .target(
            name: "SessionStore",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")]
        ),

        // Reads the ring, keeps the live table and stack table, symbolizes, writes the session.
        .target(
            name: "Collector",
            dependencies: [
                "RingFormat", "CLibDW", "SessionStore",
            ],
            // The per-event path runs millions of times a second; the tracker is single-threaded by
            // design, so the dynamic exclusivity checks on its properties buy nothing there.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),

        // Kernel side: libbpf, the BPF build plugin, and the loader/consumer of the kernel's BPF programs.
        .systemLibrary(name: "CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .plugin(name: "BPFCompile", capability: .buildTool()),
        .target(
            name: "KernelSide", dependencies: ["Collector", "SessionStore", "CLibBPF"],
            // Collector's symbolizer demangles with libstdc++'s __cxa_demangle.
            linkerSettings: [.linkedLibrary("stdc++")], plugins: ["BPFCompile"]),

        // What both CLIs share: one-line errors and exit codes.
        .target(
            name: "CLISupport",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // Reads sessions, sorts and filters, renders text and JSON.
        .target(name: "LeakReport", dependencies: ["SessionStore"], exclude: ["Formats"]),

        // zlib, for gzip'd pprof files.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),

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
                "Collector", "LeakReport", "CLISupport", "KernelSide",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "leakreport",
            dependencies: [
                "LeakReport", "CLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Times the report formats on a synthetic 131k-stack profile (tools/bench/formats/main.swift).
        .executableTarget(name: "formats-bench", dependencies: ["ReportFormats"], path: "tools/bench/formats"),

        // Compiles and runs the small C/C++ programs the tests assert on; finds this build's products.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CollectorTests", dependencies: ["Collector", "RingFormat", "SessionStore", "TestSupport"]),
        .testTarget(
            name: "LeakReportTests",
            dependencies: ["LeakReport", "SessionStore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "KernelSideTests", dependencies: ["KernelSide", "Collector", "SessionStore", "LeakReport", "TestSupport"]),
        .testTarget(name: "ReportFormatsTests", dependencies: ["ReportFormats", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["SessionStore", "LeakReport", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
