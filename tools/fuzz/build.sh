#!/usr/bin/env bash
# Builds .build/fuzz/leakfuzz, the libFuzzer binary of every decoder target (tools/fuzz/Harness).
#
# The modules under test are compiled here from the package's own sources with
# -sanitize=fuzzer,address (coverage for libFuzzer, and ASan), one whole-module object each, in
# dependency order. Third-party code (GRDB) is not instrumented: its objects are taken from the normal
# debug build, which this script runs first, so the fuzz build adds only our own modules' compile time.
# Usage: tools/fuzz/build.sh   (prints the binary's path)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

swift build --product leakcollect >&2
debug=$(swift build --show-bin-path)
out=$root/.build/fuzz
mkdir -p "$out/modules" "$out/objects" "$out/deps" "$out/cache"

# GRDB's module (built by SwiftPM, not instrumented) is the only compiled dependency imported; it
# gets a directory of its own so our uninstrumented debug modules are never picked up instead of these.
ln -sfn "$debug/Modules/GRDB.swiftmodule" "$out/deps/GRDB.swiftmodule"
# The report formats' pprof encoder imports SwiftProtobuf: taken from the debug build the same way.
ln -sfn "$debug/Modules/SwiftProtobuf.swiftmodule" "$out/deps/SwiftProtobuf.swiftmodule"
cat >"$out/RingFormat.modulemap" <<EOF
module RingFormat {
    umbrella "$root/Sources/Collector/RingFormat/include"
    export *
}
EOF

flags=(
    -parse-as-library -O -g -enable-testing -swift-version 5 -sanitize=fuzzer,address
    -DSWIFT_PACKAGE -I "$out/modules" -I "$out/deps" -module-cache-path "$out/cache"
    -Xcc -fmodule-map-file="$root/.build/checkouts/GRDB.swift/Sources/GRDBSQLite/module.modulemap"
    -Xcc -fmodule-map-file="$out/RingFormat.modulemap" -Xcc -I -Xcc "$root/Sources/Collector/RingFormat/include"
    -Xcc -fmodule-map-file="$root/Sources/Collector/CZlib/module.modulemap"
    -Xcc -fmodule-map-file="$root/Sources/Collector/CLibDW/module.modulemap"
    -Xcc -fmodule-map-file="$root/Sources/KernelSide/CLibBPF/module.modulemap"
)

# module NAME SOURCE...: compiles one module unless its object is newer than its sources, this script
# and every module compiled before it (modules are listed in dependency order).
rebuilt=0
module() {
    local name=$1
    shift
    local obj=$out/objects/$name.o newest
    newest=$(ls -t "$@" | head -1)
    if [[ $rebuilt == 0 && -f $obj && $obj -nt $newest && $obj -nt $0 ]]; then return; fi
    rebuilt=1
    echo "fuzz build: $name ($# files)" >&2
    swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/modules/$name.swiftmodule" \
        -wmo -num-threads 0 -c -o "$obj" "$@"
    # swiftc leaves an identical object untouched; its time must still say "built from these sources".
    touch "$obj"
}

S=$root/Sources
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
mapfile -t formats < <(find "$S"/LeakReport/Formats -name '*.swift' | sort)
module ReportFormats "${formats[@]}"
module LeakReport "$S"/LeakReport/*.swift
module LeakFuzz "$root"/tools/fuzz/Harness/*.swift

binary=$out/leakfuzz
if [[ ! -f $binary ]] || [[ -n $(find "$out/objects" "$debug/GRDB.build" "$debug/SwiftProtobuf.build" -name '*.o' -newer "$binary" | head -1) ]]; then
    echo "fuzz build: linking $binary" >&2
    swiftc -sanitize=fuzzer,address -o "$binary" "$out"/objects/*.o "$debug"/GRDB.build/*.o "$debug"/SwiftProtobuf.build/*.o \
        -lsqlite3 -ldw -lelf -lz -lbpf -liberty -lstdc++ 2>&1 | { grep -v "Cannot export local symbol" >&2 || true; }
fi
echo "$binary"
