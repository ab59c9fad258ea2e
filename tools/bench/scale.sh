#!/usr/bin/env bash
# The collector at production scale (issue: one core that holds 10M live blocks), side by side with
# heaptrack in one run:
#   - scalebench: 10,000,000 live blocks of 16 bytes from 131,072 distinct ~40-frame stacks (frame pointers);
#   - real programs that nobody here wrote (perl, node, the JVM): how long after they end we return.
# Prints a markdown table and writes it to bench-results/scale.md. Not a test: nothing here asserts a time.
#   tools/bench/scale.sh [blocks=10000000] [runs=3]
#   tools/bench/scale.sh --reports-only   # re-time only the reports, on the sessions of the last full run
set -euo pipefail
cd "$(dirname "$0")/../.."
reports_only=0
if [[ ${1:-} == --reports-only ]]; then reports_only=1; shift; fi
blocks=${1:-10000000}
runs=${2:-3}

tools/setup.sh --bench
swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
out=bench-results
work=.build/bench/scale
mkdir -p "$out" "$work"
gcc -O2 -g -fno-omit-frame-pointer -o "$work/scalebench" tools/bench/scalebench.c

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# wall seconds and peak RSS (KB) of a command, as GNU time measures them
timed() { /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || true; cat "$work/time.txt"; }
# A report's row, median of $runs runs of each figure: wall, CPU (user + system; on a shared machine the
# wall is mostly other work) and peak RSS.
report_row() {
  local label=$1 w=() c=() m=()
  shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || true
    read -r e u sy rss <"$work/time.txt"
    w+=("$e"); c+=("$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')"); m+=("$rss")
  done
  echo "| \`$label\` | $(printf '%s\n' "${w[@]}" | median) s | $(printf '%s\n' "${c[@]}" | median) s | $(( $(printf '%s\n' "${m[@]}" | median) / 1024 )) MB |"
}
counter() { sqlite3 "$1" "SELECT value FROM counters WHERE name = '$2'" 2>/dev/null || echo 0; }

declare -A wall stats

if (( reports_only )); then
  [[ -f $work/s.leaks && -f $work/default.leaks ]] || { echo "scale.sh: no sessions in $work; run it once without --reports-only" >&2; exit 1; }
fi
echo "scalebench: $blocks blocks, median of $runs runs" >&2
for how in uninstrumented leakcollect "leakcollect fp" heaptrack; do
  (( reports_only )) && break
  samples=()
  for _ in $(seq "$runs"); do
    rm -f "$work"/ht.*
    case $how in
      uninstrumented) t=$(timed "$work/scalebench" "$blocks") ;;
      leakcollect) rm -f "$work"/default.leaks*; t=$(timed "$bin/leakcollect" --quiet -o "$work/default.leaks" -- "$work/scalebench" "$blocks") ;;
      "leakcollect fp") rm -f "$work"/s.leaks*; t=$(timed env LEAKSHIM_UNWIND=fp "$bin/leakcollect" --quiet -o "$work/s.leaks" -- "$work/scalebench" "$blocks") ;;
      heaptrack) t=$(timed heaptrack -o "$work/ht" "$work/scalebench" "$blocks") ;;
    esac
    samples+=("${t%% *}")
  done
  wall[$how]=$(printf '%s\n' "${samples[@]}" | median)
  if [[ $how == leakcollect* ]]; then
    s="$work/default.leaks"
    [[ $how == "leakcollect fp" ]] && s="$work/s.leaks"
    live=$(sqlite3 "$s" "SELECT SUM(blocks), SUM(bytes) FROM stack_totals WHERE kind = 'heap'")
    chunks=$(sqlite3 "$s" "SELECT SUM(length(data)) FROM live_chunks")
    size=$(stat -c %s "$s")
    rss=$(counter "$s" collector_peak_rss_bytes)
    waits=$(counter "$s" ring_waits)
    lost=$(counter "$s" lost_events)
    deferred=$(counter "$s" deferred_flushes)
    echo "$how: live (blocks|bytes) $live, lost_events $lost, ring waits $waits, deferred flushes $deferred" >&2
    stats[$how]="$live|$lost|$rss|$size|$chunks"
  fi
done

base=${wall[uninstrumented]:-0}
ht=${wall[heaptrack]:-0}
ratio() { awk -v a="$1" -v b="$base" -v h="$ht" 'BEGIN { printf "%.2f", (a - b) / (h - b) }'; }

# Report speed on the last fp session (the same content as the default run's).
s="$work/s.leaks"
reports=""
for args in "" "--kind heap" "--min-size 16" "--older-than 1s" "--format json"; do
  # shellcheck disable=SC2086
  reports+="$(report_row "leakreport top${args:+ $args}" "$bin/leakreport" top "$s" $args)"$'\n'
done
# The analyses and formats (issue: growth, peak, churn, diff, pprof, flame graphs, a live view) on the
# same session; diff compares it with the default run's (the same program, another ASLR layout).
for args in "growth" "peak" "churn" "diff $work/default.leaks" "pprof -o $work/s.pb.gz" "folded -o $work/s.folded" \
  "flamegraph -o $work/s.svg" "flamegraph --growth -o $work/s-growth.svg"; do
  read -r cmd rest <<<"$args"
  # shellcheck disable=SC2086
  if [[ $cmd == diff ]]; then
    reports+="$(report_row "leakreport ${args//$work\//}" "$bin/leakreport" diff $rest "$s")"$'\n'
  else
    reports+="$(report_row "leakreport ${args//$work\//}" "$bin/leakreport" "$cmd" "$s" $rest)"$'\n'
  fi
done
svg=$(stat -c %s "$work/s.svg")
# The live view: the first read (the whole session into its model), a refresh after it and one redraw,
# as --once reports them; then refreshes as they happen, each reading only what the collector added,
# while a collection of the same program writes its session (--measure-refresh follows it to its end).
live=$("$bin/leakreport" top --live --once "$s" 2>&1 >/dev/null | tail -1)
if (( reports_only )); then
  {
    echo "| report | wall | CPU | peak RSS |"
    echo "|---|---|---|---|"
    printf '%s' "$reports"
    echo
    echo "Flame graph: $(( svg / 1024 )) KiB. Live view (\`top --live --once\`): $live."
    echo "$(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
  } | tee "$out/scale-reports.md"
  exit 0
fi
rm -f "$work"/live.leaks*
env LEAKSHIM_UNWIND=fp "$bin/leakcollect" --quiet -o "$work/live.leaks" -- "$work/scalebench" "$blocks" >/dev/null 2>&1 &
collecting=$!
following=$("$bin/leakreport" top --live --measure-refresh "$work/live.leaks" 2>&1 >/dev/null | tail -1 | sed 's/; each.*//')
wait "$collecting" || true
rm -f "$work"/ht.*
heaptrack -o "$work/ht" "$work/scalebench" "$blocks" >/dev/null 2>&1 || true
reports+="$(report_row heaptrack_print heaptrack_print "$work"/ht.*)"$'\n'
htsize=$(stat -c %s "$work"/ht.* | head -1)

# Real programs: wall time uninstrumented and under leakcollect (to the moment the command returns).
real=$(BIN=$bin WORK=$work tools/bench/real-programs.sh "$runs")$'\n'

IFS='|' read -r blocksd bytesd lostd rssd sized chunksd <<<"${stats[leakcollect fp]:-||||||}"
{
  echo "### At scale: $blocks live blocks from 131,072 stacks (tools/bench/scale.sh)"
  echo
  echo "| run | wall to return | overhead / heaptrack's |"
  echo "|---|---|---|"
  echo "| uninstrumented | $base s | – |"
  echo "| heaptrack | $ht s | 1.00 |"
  echo "| leakcollect | ${wall[leakcollect]} s | $(ratio "${wall[leakcollect]}") |"
  echo "| leakcollect, LEAKSHIM_UNWIND=fp | ${wall[leakcollect fp]} s | $(ratio "${wall[leakcollect fp]}") |"
  echo
  echo "leakcollect (fp run): outstanding $blocksd blocks, $bytesd bytes, lost_events $lostd;"
  echo "collector peak RSS $(( rssd / 1048576 )) MB = $(( rssd / blocks )) B per live block;"
  echo "session $(( sized / 1048576 )) MB, of which live-block checkpoints $(( chunksd / 1048576 )) MB = $(( chunksd / blocks )) B per live block"
  echo "(heaptrack's file: $(( htsize / 1048576 )) MB)."
  echo
  echo "| report | wall | CPU | peak RSS |"
  echo "|---|---|---|---|"
  printf '%s' "$reports"
  echo
  echo "Flame graph: $(( svg / 1024 )) KiB. Live view (\`top --live --once\`): $live."
  echo "Live view beside a collection of the same run (\`top --live --measure-refresh\`): $following."
  echo
  echo "| program | uninstrumented | under leakcollect | ratio |"
  echo "|---|---|---|---|"
  printf '%s' "$real"
  echo
  echo "$(nproc) cores, $(uname -r), median of $runs runs."
} | tee "$out/scale.md"
