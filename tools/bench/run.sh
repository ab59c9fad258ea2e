#!/usr/bin/env bash
# Benchmark: the malloc-heavy workload uninstrumented, under leakcollect (our shim), under heaptrack and
# under a memleak-style bpftrace uprobe script, side by side in one run. Each number is the median of
# the workload's own elapsed time over RUNS runs (tool start-up and post-processing excluded), as ns per
# malloc+free pair and as a ratio to the uninstrumented run. Writes bench-results/mallocbench.md.
#   tools/bench/run.sh [threads] [pairs-per-thread] [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-2}
pairs=${2:-2000000}
runs=${3:-5}
# The uprobe approach costs microseconds per call; give it fewer pairs and compare per pair.
uprobe_pairs=$((pairs / 50))

tools/setup.sh --bench
swift build -c release >/dev/null
out=bench-results
mkdir -p "$out" .build/bench
gcc -O2 -g -fno-omit-frame-pointer -pthread -o .build/bench/mallocbench tools/bench/mallocbench.c
bench=.build/bench/mallocbench
[[ -d /sys/kernel/tracing/events ]] || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

# elapsed ns of one run: the workload prints elapsed_ns=N on stderr; everything else is discarded.
elapsed() { "$@" 2>&1 >/dev/null | sed -n 's/.*elapsed_ns=\([0-9]*\).*/\1/p' | tail -1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # name pairs command...
  local name=$1 n=$2; shift 2
  local samples=()
  for _ in $(seq "$runs"); do samples+=("$(elapsed "$@")"); done
  local m; m=$(printf '%s\n' "${samples[@]}" | median)
  # ns per pair, per thread (threads run in parallel)
  echo "$name|$(awk -v m="$m" -v n="$n" 'BEGIN {printf "%.1f", m / n}')"
}

results=$(
  measure uninstrumented "$pairs" "$bench" "$threads" "$pairs"
  measure leakcollect "$pairs" .build/release/leakcollect --quiet -o .build/bench/bench.leaks -- "$bench" "$threads" "$pairs"
  measure "leakcollect, LEAKSHIM_UNWIND=fp" "$pairs" env LEAKSHIM_UNWIND=fp .build/release/leakcollect --quiet -o .build/bench/bench-fp.leaks -- "$bench" "$threads" "$pairs"
  measure heaptrack "$pairs" heaptrack -o .build/bench/heaptrack "$bench" "$threads" "$pairs"
  measure bpftrace-uprobes "$uprobe_pairs" bpftrace tools/bench/memleak-uprobes.bt -c "$bench $threads $uprobe_pairs"
)
base=$(awk -F'|' '$1 == "uninstrumented" {print $2}' <<<"$results")
heap=$(awk -F'|' '$1 == "heaptrack" {print $2}' <<<"$results")
{
  echo "| how it ran | ns per malloc+free pair | vs. uninstrumented | overhead vs. heaptrack's |"
  echo "|---|---|---|---|"
  while IFS='|' read -r name ns; do
    echo "| $name | $ns | $(awk -v a="$ns" -v b="$base" 'BEGIN {printf "%.1f×", a / b}') | $(awk -v a="$ns" -v b="$base" -v h="$heap" 'BEGIN {printf "%.2f", (a - b) / (h - b)}') |"
  done <<<"$results"
  echo
  echo "mallocbench: $threads threads, $pairs pairs per thread ($uprobe_pairs for bpftrace), median of $runs runs, $(nproc) cores, $(uname -r)."
} | tee "$out/mallocbench.md"
