#!/usr/bin/env bash
# Builds the libFuzzer targets (tools/fuzz/build.sh) and runs each for SECONDS (default 60), FUZZ_JOBS
# at a time (default: one per core, at most 2), then prints per target, in the order listed, the
# executions it survived and the crashes it found.
#   tools/fuzz.sh [SECONDS]                   every target
#   FUZZ_TARGETS="ring session" tools/fuzz.sh 600
# Each target starts from the committed seeds (tools/fuzz/corpus/TARGET) and keeps what it learns in
# .build/fuzz/corpus/TARGET; a crashing input is saved in .build/fuzz/crashes/TARGET/. Reproduce one
# with: LEAKFUZZ_TARGET=TARGET .build/fuzz/leakfuzz FILE (.build/fuzz/leakfuzz-sqlite for the SQLite ones)
# The SQLite targets (session, sessionedit) run .build/fuzz/leakfuzz-sqlite, built without ASan (see
# tools/fuzz/build.sh); the others .build/fuzz/leakfuzz. FUZZ_BINARY=PATH and FUZZ_SQLITE_BINARY=PATH run
# already built ones instead (copies, for a long run beside rebuilds), and FUZZ_OUT=DIR keeps that run's
# corpus, crashes and logs apart (default .build/fuzz). FUZZ_SEED=N makes the mutations repeatable (CI's
# smoke run); unset, each run draws its own.
# Exits non-zero when any target crashed, leaked, timed out or could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "tools/fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2; }
targets=${FUZZ_TARGETS:-ring livetable proc blobs session sessionedit kernel uprobe elf}
# Targets are single-threaded: two at a time halve CI's smoke run on its two cores; more would only
# share the cores and give each target fewer executions in its SECONDS.
cores=$(nproc 2>/dev/null || echo 1)
jobs=${FUZZ_JOBS:-$(( cores < 2 ? 1 : 2 ))}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "tools/fuzz.sh: FUZZ_JOBS must be a positive whole number, not '$jobs'" >&2; exit 2; }
sqlite_targets=" session sessionedit "
build=0
for t in $targets; do
    [[ -d tools/fuzz/corpus/$t ]] || { echo "tools/fuzz.sh: no target '$t' (no tools/fuzz/corpus/$t)" >&2; exit 2; }
    if [[ $sqlite_targets == *" $t "* ]]; then [[ -n ${FUZZ_SQLITE_BINARY:-} ]] || build=1; else [[ -n ${FUZZ_BINARY:-} ]] || build=1; fi
done
built=""
[[ $build == 0 ]] || built=$(tools/fuzz/build.sh)
asan_binary=${FUZZ_BINARY:-$(sed -n 1p <<<"$built")}
sqlite_binary=${FUZZ_SQLITE_BINARY:-$(sed -n 2p <<<"$built")}
out=${FUZZ_OUT:-.build/fuzz}

# run_target T: fuzzes T for SECONDS; writes its summary line(s) to $out/T.summary and exits non-zero
# when the target failed.
run_target() {
    local t=$1
    mkdir -p "$out/corpus/$t" "$out/crashes/$t"
    local log=$out/$t.log rc=0 stamp=$out/$t.started
    touch "$stamp"
    # A shorter allocation stack per malloc, for speed. A Swift trap (overflow, bad conversion) is
    # SIGILL, which ASan leaves alone unless told: without handle_sigill the process dies by the signal
    # with no report and no saved input.
    local asan=${ASAN_OPTIONS:-malloc_context_size=8:handle_sigill=1}
    # libFuzzer runs again every input that mallocs more than it frees, to look for a leak. With
    # LeakSanitizer off (ASAN_OPTIONS=...:detect_leaks=0, or the SQLite targets' binary, which has no
    # sanitizer) that second run can find nothing: tell libFuzzer too, or it halves the rate.
    local binary=$asan_binary leaks=1
    [[ :$asan: == *:detect_leaks=0:* ]] && leaks=0
    if [[ $sqlite_targets == *" $t "* ]]; then
        binary=$sqlite_binary
        leaks=0
    fi
    LEAKFUZZ_TARGET=$t ASAN_OPTIONS=$asan nice "$binary" -seed="${FUZZ_SEED:-0}" -detect_leaks=$leaks \
        -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$t/" "$out/corpus/$t" "tools/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    local execs crashes
    execs=$(awk '/stat::number_of_executed_units/ {n = $2} END {print n}' "$log")
    crashes=$(find "$out/crashes/$t" -type f -newer "$stamp" | wc -l)
    {
        printf '%-11s %10s executions in %ss, %s new crash inputs, exit %s\n' "$t" "${execs:-?}" "$seconds" "$crashes" "$rc"
        if [[ $rc != 0 ]]; then
            grep -m1 -E 'ERROR: |==ERROR|Fatal error|SUMMARY|crashed' "$log" | sed 's/^/         /' || true
            echo "         log: $log"
        fi
    } >"$out/$t.summary"
    [[ $rc == 0 ]]
}

mkdir -p "$out"
declare -A pid_of
status=0
running=0
for t in $targets; do
    rm -f "$out/$t.summary"
    if (( running >= jobs )); then
        wait -n || true # a failure is read from its summary below
        running=$((running - 1))
    fi
    run_target "$t" &
    pid_of[$t]=$!
    running=$((running + 1))
done
for t in $targets; do
    wait "${pid_of[$t]}" || status=1
    cat "$out/$t.summary" 2>/dev/null || { echo "$t: no summary (the run did not finish)"; status=1; }
done
exit $status
