#!/usr/bin/env bash
# Builds the libFuzzer targets (tools/fuzz/build.sh) and runs each for SECONDS (default 60), one after
# the other, then prints per target the executions it survived and the crashes it found.
#   tools/fuzz.sh [SECONDS]                   every target
#   FUZZ_TARGETS="ring session" tools/fuzz.sh 600
# Each target starts from the committed seeds (tools/fuzz/corpus/TARGET) and keeps what it learns in
# .build/fuzz/corpus/TARGET; a crashing input is saved in .build/fuzz/crashes/TARGET/. Reproduce one
# with: LEAKFUZZ_TARGET=TARGET .build/fuzz/leakfuzz FILE
# FUZZ_BINARY=PATH runs an already built binary (a copy, for a long run beside rebuilds) and FUZZ_OUT=DIR
# keeps that run's corpus, crashes and logs apart (default .build/fuzz). FUZZ_SEED=N makes the mutations
# repeatable (CI's smoke run); unset, each run draws its own.
# Exits non-zero when any target crashed, leaked, timed out or could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "tools/fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2; }
targets=${FUZZ_TARGETS:-ring livetable proc blobs session sessionedit kernel uprobe elf}
binary=${FUZZ_BINARY:-$(tools/fuzz/build.sh)}
out=${FUZZ_OUT:-.build/fuzz}
status=0
for t in $targets; do
    [[ -d tools/fuzz/corpus/$t ]] || { echo "tools/fuzz.sh: no target '$t' (no tools/fuzz/corpus/$t)" >&2; exit 2; }
    mkdir -p "$out/corpus/$t" "$out/crashes/$t"
    log=$out/$t.log
    rc=0
    stamp=$out/$t.started
    touch "$stamp"
    # A shorter allocation stack per malloc: the session target mallocs a lot through SQLite. A Swift
    # trap (overflow, bad conversion) is SIGILL, which ASan leaves alone unless told: without
    # handle_sigill the process dies by the signal with no report and no saved input.
    asan=${ASAN_OPTIONS:-malloc_context_size=8:handle_sigill=1}
    # libFuzzer runs again every input that mallocs more than it frees (the SQLite targets free some of
    # an input's objects during the next one), to look for a leak. With LeakSanitizer off (long runs'
    # detect_leaks=0) that second run can find nothing: tell libFuzzer too, or it halves the rate.
    leaks=1
    [[ :$asan: == *:detect_leaks=0:* ]] && leaks=0
    LEAKFUZZ_TARGET=$t ASAN_OPTIONS=$asan nice "$binary" -seed="${FUZZ_SEED:-0}" -detect_leaks=$leaks \
        -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$t/" "$out/corpus/$t" "tools/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    execs=$(awk '/stat::number_of_executed_units/ {n = $2} END {print n}' "$log")
    crashes=$(find "$out/crashes/$t" -type f -newer "$stamp" | wc -l)
    printf '%-11s %10s executions in %ss, %s new crash inputs, exit %s\n' "$t" "${execs:-?}" "$seconds" "$crashes" "$rc"
    if [[ $rc != 0 ]]; then
        status=1
        grep -m1 -E 'ERROR: |==ERROR|Fatal error|SUMMARY|crashed' "$log" | sed 's/^/         /' || true
        echo "         log: $log"
    fi
done
exit $status
