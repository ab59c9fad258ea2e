#!/usr/bin/env bash
# BPF-only mode's overhead beside the classic uprobe approach (tools/bench/memleak-uprobes.bt: bpftrace,
# size at malloc entry, pointer and ustack at return, delete on free) and the uninstrumented program,
# on the same malloc-heavy program at the same size, interleaved, in one run (as root):
#   sudo tools/bench/bpf-mode.sh [--pairs N] [--runs N] [--debug]
# Prints a table and checks the target: BPF mode's overhead at most 1/3 of bpftrace's, nothing lost,
# and the known leaks exactly.
set -euo pipefail
cd "$(dirname "$0")/../.."
config=release
args=()
for a in "$@"; do
  if [[ $a == --debug ]]; then config=debug; else args+=("$a"); fi
done
command -v bpftrace >/dev/null || tools/setup.sh --bench
swift build -c "$config" --product leakcollect >/dev/null
swift build -c "$config" --product leakreport >/dev/null
mkdir -p .build/bench
gcc -O2 -g -fno-omit-frame-pointer -pthread -o .build/bench/mallocbench-fp tools/bench/mallocbench.c
exec /usr/bin/python3 tools/bench/bpf_mode.py --build ".build/$config" "${args[@]}"
