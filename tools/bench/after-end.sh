#!/usr/bin/env bash
# Where a collection's time goes around the program's end, from the kernel's exec and exit events
# (perf's sched tracepoints, so nothing is ptraced): the collector's start to the program's exec, the
# program's run, and the time from its exit to the collector's return.
#   tools/bench/after-end.sh [runs=5] -- COMMAND [ARGS...]      e.g. ... -- java -version
# Release build. Prints one line per run and the medians. Not a test: nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=5
if [[ ${1:-} != -- ]]; then runs=$1; shift; fi
[[ ${1:-} == -- ]] && shift
command -v perf >/dev/null || tools/setup.sh --bench
bin=${BIN:-}
if [[ -z $bin ]]; then
  swift build -c release >/dev/null
  bin=$(swift build -c release --show-bin-path)
fi
work=.build/bench/after-end
mkdir -p "$work"

for _ in $(seq "$runs"); do
  rm -f "$work"/s.leaks*
  perf record -q -o "$work/sched.data" -e sched:sched_process_exec -e sched:sched_process_exit -- \
    "$bin/leakcollect" --quiet -o "$work/s.leaks" -- "$@" >/dev/null 2>&1 || true
  # The first exec is the collector's, the second the program's; each has ended at its last thread's exit.
  perf script -i "$work/sched.data" -F pid,tid,time,event 2>/dev/null | awk '
    { split($1, ids, "/"); pid = ids[1]; t = $2 + 0 }
    /sched_process_exec/ { if (!start) { start = t; me = pid } else if (!prog) { prog = pid; exec = t } }
    /sched_process_exit/ { if (pid == prog) ended = t; if (pid == me) returned = t }
    END { printf "%.3f %.3f %.3f %.3f\n", exec - start, ended - exec, returned - ended, returned - start }'
done >"$work/runs.txt"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$work/runs.txt" | median; }
echo "$*: collector start to exec $(col 1) s, program ran $(col 2) s, program exit to return $(col 3) s, total $(col 4) s (median of $runs)"
