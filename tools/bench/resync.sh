#!/usr/bin/env bash
# What a resync costs at scale: scalebench keeps 10M blocks live while its collector is SIGSTOPped for
# 4 s, so the ring fills, records are lost and the collector resynchronizes from the shim's live table.
# Prints the whole run's wall time and peak RSS, and the time from the first loss seen to the resync done.
# Not a test: nothing here asserts a time.
#   tools/bench/resync.sh [blocks=10000000] [runs=2]
set -euo pipefail
cd "$(dirname "$0")/../.."
blocks=${1:-10000000}
runs=${2:-2}
tools/setup.sh --bench
swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
work=.build/bench/resync
mkdir -p "$work"
gcc -O2 -g -fno-omit-frame-pointer -o "$work/scalebench" tools/bench/scalebench.c
counter() { sqlite3 "$work/r.leaks" "SELECT value FROM counters WHERE name = '$1'" 2>/dev/null || echo 0; }
for run in $(seq "$runs"); do
  rm -f "$work"/r.leaks*
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$bin/leakcollect" --quiet -o "$work/r.leaks" -- "$work/scalebench" "$blocks" >/dev/null 2>"$work/stderr.txt" &
  sleep 4
  collector=$(pgrep -f -- "-o $work/r.leaks" | tail -1)
  kill -STOP "$collector"; sleep 4; kill -CONT "$collector"
  wait
  read -r wall rss <"$work/time.txt"
  first=$(counter resync_first_loss_ns) last=$(counter resync_last_ns)
  echo "run $run: ${wall} s wall, collector peak $(( rss / 1024 )) MB; lost_events $(counter lost_events), resyncs $(counter resyncs)," \
    "first loss to resync done $(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"
done
