#!/usr/bin/env bash
# Builds the two libFuzzer binaries of the decoder targets (tools/fuzz/Harness), both holding every
# target: .build/fuzz/leakfuzz, compiled with -sanitize=fuzzer,address (coverage for libFuzzer, and
# ASan), and .build/fuzz/leakfuzz-sqlite, with coverage only, for the two SQLite targets (session,
# sessionedit). Those spend their time in SQLite and GRDB, whose every malloc ASan intercepted (3 times
# slower); the code they reach that reads raw memory (the packed blobs, varints) is fuzzed under
# ASan by the blobs target, and Swift's own checks (bounds, overflow) stay in both builds.
#
# The modules under test are compiled here from the package's own sources, one whole-module object
# each, in dependency order. Third-party code (GRDB, SwiftProtobuf) is not instrumented: its objects are
# taken from an optimized build of those two targets, which this script runs first (GRDB's debug build
# made the SQLite targets 1.3 to 1.9 times slower), so the fuzz build adds only their compile time and ours.
# Usage: tools/fuzz/build.sh   (prints the two binaries' paths, one a line)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

for dep in GRDB SwiftProtobuf; do swift build -c release --target "$dep" >&2; done
deps=$(swift build -c release --show-bin-path)
S=$root/Sources

# build OUT BINARY SANITIZERS: compiles every module into OUT and links BINARY, with -sanitize=SANITIZERS.
build() {
    local out=$1 binary=$2 sanitize=$3
    mkdir -p "$out/modules" "$out/objects" "$out/deps" "$out/cache"
    # GRDB's module (built by SwiftPM, not instrumented) is the only compiled dependency imported; it
    # gets a directory of its own so no uninstrumented module of ours is ever picked up instead of these.
    ln -sfn "$deps/Modules/GRDB.swiftmodule" "$out/deps/GRDB.swiftmodule"
    # The report formats' pprof encoder imports SwiftProtobuf: taken from the same build.
    ln -sfn "$deps/Modules/SwiftProtobuf.swiftmodule" "$out/deps/SwiftProtobuf.swiftmodule"
    cat >"$out/RingFormat.modulemap" <<MAP
module RingFormat {
    umbrella "$root/Sources/Collector/RingFormat/include"
    export *
}
MAP
    local flags=(
        -parse-as-library -O -g -enable-testing -swift-version 5 -sanitize="$sanitize"
        -DSWIFT_PACKAGE -I "$out/modules" -I "$out/deps" -module-cache-path "$out/cache"
        -Xcc -fmodule-map-file="$root/.build/checkouts/GRDB.swift/Sources/GRDBSQLite/module.modulemap"
        -Xcc -fmodule-map-file="$out/RingFormat.modulemap" -Xcc -I -Xcc "$root/Sources/Collector/RingFormat/include"
        -Xcc -fmodule-map-file="$root/Sources/Collector/CZlib/module.modulemap"
        -Xcc -fmodule-map-file="$root/Sources/Collector/CMalloc/module.modulemap"
        -Xcc -fmodule-map-file="$root/Sources/Collector/CLibDW/module.modulemap"
        -Xcc -fmodule-map-file="$root/Sources/KernelSide/CLibBPF/module.modulemap"
    )

    # module NAME SOURCE...: compiles one module unless its object is newer than its sources, this
    # script and every module compiled before it (modules are listed in dependency order).
    local rebuilt=0
    module() {
        local name=$1
        shift
        local obj=$out/objects/$name.o newest
        newest=$(ls -t "$@" | head -1)
        if [[ $rebuilt == 0 && -f $obj && $obj -nt $newest && $obj -nt $0 ]]; then return; fi
        rebuilt=1
        echo "fuzz build ($sanitize): $name ($# files)" >&2
        swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/modules/$name.swiftmodule" \
            -wmo -num-threads 0 -c -o "$obj" "$@"
        # swiftc leaves an identical object untouched; its time must still say "built from these sources".
        touch "$obj"
    }

    module Vocabulary "$S"/Collector/Vocabulary/*.swift
    module SessionStore "$S"/Collector/SessionStore/*.swift
    module Tracking "$S"/Collector/Tracking/*.swift
    module Symbols "$S"/Collector/Symbols/*.swift
    module CollectionRunner "$S"/Collector/Runner/*.swift
    module ShimSource "$S"/Collector/ShimSource/*.swift
    module KernelSession "$S"/KernelSide/Session/*.swift
    # Only the kernel side's pure parts: the rest needs the BPF objects and a kernel to load them into.
    module KernelSide "$S"/KernelSide/Source/{KernelRecord,SystemSnapshot}.swift "$S"/KernelSide/BPFSupport/Capabilities.swift
    # BPF-only mode's record decoder and stack definitions: the rest loads BPF programs into a process.
    module UprobeSource "$S"/Collector/UprobeSource/{UprobeRecord,UprobeStacks}.swift
    local formats
    mapfile -t formats < <(find "$S"/LeakReport/Formats -name '*.swift' | sort)
    module ReportFormats "${formats[@]}"
    module LeakReport "$S"/LeakReport/*.swift
    module LeakFuzz "$root"/tools/fuzz/Harness/*.swift

    if [[ ! -f $binary ]] || [[ -n $(find "$out/objects" "$deps/GRDB.build" "$deps/SwiftProtobuf.build" -name '*.o' -newer "$binary" | head -1) ]]; then
        echo "fuzz build ($sanitize): linking $binary" >&2
        swiftc -sanitize="$sanitize" -o "$binary" "$out"/objects/*.o "$deps"/GRDB.build/*.o "$deps"/SwiftProtobuf.build/*.o \
            -lsqlite3 -ldw -lelf -lz -lbpf -liberty -lstdc++ 2>&1 | { grep -v "Cannot export local symbol" >&2 || true; }
    fi
}

# The two builds share nothing but the release dependencies above, and each swiftc is single-threaded:
# side by side they take about half the time on CI's two cores.
build "$root/.build/fuzz" "$root/.build/fuzz/leakfuzz" fuzzer,address &
asan_build=$!
build "$root/.build/fuzz/sqlite" "$root/.build/fuzz/leakfuzz-sqlite" fuzzer &
sqlite_build=$!
failed=0
wait "$asan_build" || failed=1
wait "$sqlite_build" || failed=1
[[ $failed == 0 ]] || { echo "tools/fuzz/build.sh: a fuzz build failed (its errors are above)" >&2; exit 1; }
echo "$root/.build/fuzz/leakfuzz"
echo "$root/.build/fuzz/leakfuzz-sqlite"
