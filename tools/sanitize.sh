#!/usr/bin/env bash
# Builds libleakshim.so twice, with the undefined-behaviour sanitizer and with the address sanitizer, and
# runs pipeline fixtures through leakcollect with each: every run must give exactly the figures the normal
# shim gives (and the demo its known ones), and the sanitizer must report nothing. CI runs it once
# (tools/test.sh).
#
# The ASan shim: the shim interposes malloc, and ASan wants to own malloc and be initialized before the
# first call to it. Preloaded behind the runtime, the program's malloc would bind to ASan's and the shim
# would never see it; so the shim comes first (ASan's link-order check is turned off) and passes every
# call through to ASan's allocator. interpose.c and bootstrap.c, which run before the runtime has mapped
# its shadow memory, are left uninstrumented and start the shim only once the shadow exists
# (LS_ASAN_BUILD); everything else the shim does (the unwinder, the stack table, the ring, the live table,
# the module map) is instrumented. The collector's side of the ring, and every other decoder, runs under
# ASan in the fuzz targets (tools/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
swift build --product leakcollect >&2
swift build --product leakreport >&2
bin=$(swift build --show-bin-path)
out=$root/.build/sanitize
rm -rf "$out/logs"
mkdir -p "$out/logs"

runtime=$(clang -print-file-name=libclang_rt.ubsan_standalone-x86_64.so)
[[ -f $runtime ]] || { echo "tools/sanitize.sh: the toolchain's clang has no UBSan runtime ($runtime)" >&2; exit 1; }
asan_runtime=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
[[ -f $asan_runtime ]] || { echo "tools/sanitize.sh: the toolchain's clang has no ASan runtime ($asan_runtime)" >&2; exit 1; }
# The flags of the shim's target in Package.swift, plus the sanitizer (and no -nostartfiles: that is
# there for the Swift driver's link line only).
cflags=(-fPIC -O1 -g -fno-omit-frame-pointer -fvisibility=hidden -ftls-model=initial-exec -D_GNU_SOURCE
    -I Sources/Collector/RingFormat/include -I Sources/CInterpose/include -I Sources/CInterpose)
clang -shared "${cflags[@]}" -fsanitize=undefined -fno-sanitize-recover=undefined -shared-libsan -Wl,-rpath,"$(dirname "$runtime")" \
    -o "$out/libleakshim-ubsan.so" Sources/CInterpose/*.c -lunwind -ldl
mkdir -p "$out/asan-objects"
for f in Sources/CInterpose/*.c; do
    name=$(basename "$f" .c)
    case $name in
        interpose | bootstrap) san=(-DLS_ASAN_BUILD) ;;
        *) san=(-fsanitize=address) ;;
    esac
    clang -c "${cflags[@]}" "${san[@]}" -o "$out/asan-objects/$name.o" "$f"
done
clang -shared -fsanitize=address -shared-libsan -Wl,-rpath,"$(dirname "$asan_runtime")" \
    -o "$out/libleakshim-asan.so" "$out"/asan-objects/*.o -lunwind -ldl

cc -O0 -g -o "$out/leaky" tools/demo/leaky.c -lpthread
cc -O1 -g -o "$out/ring-dump" tools/fuzz/seeds/ring-dump.c -ldl

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$out/logs/ubsan
# Leak detection is off: the fixtures leak on purpose (that is what the sessions must show).
export ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0:halt_on_error=1:log_path=$out/logs/asan
failed=0

# summary SESSION: totals and every stack's bytes, blocks and innermost function, one line each.
summary() {
    "$bin/leakreport" top "$1" --format json --top 1000 | python3 -c '
import json, sys
d = json.load(sys.stdin)
t = d["totals"]
print("outstanding", t["outstanding_bytes"], "bytes in", t["outstanding_blocks"], "blocks, lost", t["lost_events"])
for s in d["stacks"]:
    f = s["frames"][0] if s["frames"] else {}
    print(s["kind"], s["bytes"], s["blocks"], f.get("function"))'
}

# check NAME EXPECTED_FIRST_LINE ENV... -- PROGRAM ARGS...
check() {
    local name=$1 expected=$2
    shift 2
    local env=()
    while [[ $1 != -- ]]; do env+=("$1"); shift; done
    shift
    env "${env[@]}" "$bin/leakcollect" --quiet -o "$out/$name.plain.leaks" -- "$@" >/dev/null
    local plain san got
    plain=$(summary "$out/$name.plain.leaks")
    for san in ubsan asan; do
        env "${env[@]}" "$bin/leakcollect" --quiet --shim "$out/libleakshim-$san.so" -o "$out/$name.$san.leaks" -- "$@" >/dev/null
        got=$(summary "$out/$name.$san.leaks")
        if [[ $plain != "$got" ]]; then
            echo "sanitize: $name: the $san shim's session differs from the plain shim's:" >&2
            diff <(echo "$plain") <(echo "$got") >&2 || true
            failed=1
        elif [[ -n $expected && $(head -1 <<<"$got") != "$expected" ]]; then
            echo "sanitize: $name: $san shim: expected '$expected', got '$(head -1 <<<"$got")'" >&2
            failed=1
        else
            echo "sanitize: $name, $san shim: $(head -1 <<<"$got"), $(($(wc -l <<<"$got") - 1)) stacks, same as the plain shim"
        fi
    done
}

# ring-dump.c keeps 8 malloc blocks (16 B to 2 KiB), a calloc, a realloc, a posix_memalign, an mmap with
# its middle page unmapped (two regions) and an mremap-grown mapping: 50296 bytes in 14 blocks.
mix="outstanding 50296 bytes in 14 blocks, lost 0"
check demo "outstanding 5507104 bytes in 30 blocks, lost 0" -- "$out/leaky"
check demo-fp "outstanding 5507104 bytes in 30 blocks, lost 0" LEAKSHIM_UNWIND=fp -- "$out/leaky"
check allocator-mix "$mix" -- "$out/ring-dump" "$out/ring.0"
check dlopen "$mix" RING_DUMP_MODE=1 -- "$out/ring-dump" "$out/ring.1"
check churn "$mix" RING_DUMP_MODE=2 -- "$out/ring-dump" "$out/ring.2"

for san in ubsan asan; do
    if compgen -G "$out/logs/$san*" >/dev/null; then
        echo "sanitize: the $san shim's sanitizer reported:" >&2
        cat "$out"/logs/$san* >&2
        failed=1
    fi
done
exit $failed
