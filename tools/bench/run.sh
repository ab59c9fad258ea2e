#!/usr/bin/env bash
# The overhead benchmark, one command (as root: bpftrace needs it):
#   sudo tools/bench/run.sh [--runs N] [--pairs N] [--only NAME]
# Installs the tools it compares against (tools/setup.sh --bench), builds leakcollect in release mode
# and the workloads, then runs tools/bench/bench.py, which writes bench-results/bench.md and .json.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup.sh --bench
swift build -c release >/dev/null
mkdir -p .build/bench
# The malloc-heavy workload twice: with frame pointers, and without (as most distributions build).
gcc -O2 -g -fno-omit-frame-pointer -pthread -o .build/bench/mallocbench-fp tools/bench/mallocbench.c
gcc -O2 -g -fomit-frame-pointer -pthread -o .build/bench/mallocbench-nofp tools/bench/mallocbench.c
gcc -O2 -shared -fPIC -o .build/bench/procstats.so tools/bench/procstats.c
gcc -O2 -shared -fPIC -fno-plt -o .build/bench/preload-floor.so tools/bench/preload-floor.c
# valgrind 3.19 cannot read the DWARF 5 of the Swift toolchain's clang; callgrind needs only symbols.
objcopy --strip-debug .build/release/libleakshim.so .build/bench/libleakshim-nodebug.so
[[ -d /sys/kernel/tracing/events ]] || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
exec /usr/bin/python3 tools/bench/bench.py "$@"
