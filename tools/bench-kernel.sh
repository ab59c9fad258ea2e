#!/usr/bin/env bash
# Measures how much `leakcollect --kernel` slows a syscall- and allocation-heavy workload (pipes,
# files, sockets and malloc in a loop: kernel slab and page traffic on every iteration), and whether
# the collector keeps up: the events it lost (ring buffer full) and the CPU it used. The other core
# runs a busy loop throughout, so the collector competes for CPU as on a loaded machine. Not a test:
# it prints wall times and the slowdown for --kind slab and for every kind. Run as root.
#   tools/bench-kernel.sh [runs=5] [iterations=200000]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
iterations=${2:-200000}
[[ $(id -u) -eq 0 ]] || { echo "bench-kernel: needs root (BPF)" >&2; exit 1; }

swift build -c release --product leakcollect >&2
collect=$(swift build -c release --show-bin-path)/leakcollect
report=$(swift build -c release --show-bin-path)/leakreport
swift build -c release --product leakreport >&2
work=$(mktemp -d)
busy=""
trap '[[ -n $busy ]] && kill "$busy"; rm -rf "$work"' EXIT

cat >"$work/workload.c" <<'C'
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    char b = 1;
    for (long i = 0; i < n; i++) {
        int p[2];
        if (pipe(p)) return 1;
        if (write(p[1], &b, 1) != 1 || read(p[0], &b, 1) != 1) return 1;
        close(p[0]);
        close(p[1]);
        int f = open("/dev/null", O_RDONLY);
        close(f);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        close(s);
        void *m = malloc(64 + (i % 64) * 64);
        free(m);
    }
    return 0;
}
C
gcc -O2 -o "$work/workload" "$work/workload.c"

# Median wall time of `runs` runs of the workload, in milliseconds.
measure() {
  local times=()
  for ((r = 0; r < runs; r++)); do
    local t0 t1
    t0=$(date +%s%N)
    "$work/workload" "$iterations"
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

# The workload's median while a collector with these options runs. What the collector did goes to
# $work/collector: the events it handled, those it lost (ring buffer full), and its CPU time (user and
# system) while the workload ran, per event.
under_collector() {
  "$collect" --kernel -o "$work/bench.leaks" "$@" 2>"$work/collect.err" &
  local pid=$!
  until grep -q "Ctrl-C to stop" "$work/collect.err" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/collect.err" >&2; exit 1; }
    sleep 0.1
  done
  # utime + stime: fields 14 and 15 of /proc/PID/stat (the command name in field 2 has no spaces here).
  local m t0 t1
  t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  m=$(measure)
  t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  kill -INT "$pid"
  wait "$pid"
  local events lost
  events=$(sed -n 's/.*session .*: \([0-9]*\) events.*/\1/p' "$work/collect.err")
  lost=$("$report" top "$work/bench.leaks" --format json | sed -n 's/.*"lost_events" *: *\([0-9]*\).*/\1/p' | head -1)
  awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v e="${events:-0}" -v l="${lost:-?}" \
    'BEGIN { printf "%d events, %s lost; collector CPU %.2f s (%.0f ns per event)", e, l, t / hz, e ? t / hz / e * 1e9 : 0 }' >"$work/collector"
  rm -f "$work/bench.leaks"*
  echo "$m"
}

# The other core: a busy loop at normal priority for the whole run.
sh -c 'while :; do :; done' &
busy=$!

base=$(measure)
slab=$(under_collector --kind slab)
slab_collector=$(cat "$work/collector")
all=$(under_collector --kind all)
all_collector=$(cat "$work/collector")
ratio() { awk -v a="$1" -v b="$base" 'BEGIN { printf "%.2fx", a / b }'; }
echo "workload: $iterations iterations of pipe+write+read+close, open+close, socket+close, malloc+free; median of $runs runs; other core busy"
echo "uninstrumented:                   ${base} ms"
echo "leakcollect --kernel --kind slab: ${slab} ms ($(ratio "$slab")); ${slab_collector}"
echo "leakcollect --kernel --kind all:  ${all} ms ($(ratio "$all")); ${all_collector}"
