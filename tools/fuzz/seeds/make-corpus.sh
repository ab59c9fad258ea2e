#!/usr/bin/env bash
# Regenerates the fuzzers' committed seed corpus (tools/fuzz/corpus/TARGET/) from real runs:
#   ring     rings dumped by a program running under libleakshim.so, plus the same records wrapped
#            around the end of the data region and around the 2^48 position space;
#   livetable  the live table of a process under the shim that holds blocks and a dlopened library;
#   session  sessions leakcollect wrote for real programs (the demo, a dlopen user, a kernel-mode run
#            with a row added to each OOM and reclaim table), compacted;
#   sessionedit  cell edits of each kind over the demo session (the base the target edits);
#   blobs    every packed blob of those sessions, prefixed with its decoder's selector byte;
#   proc     this machine's /proc files (maps, status, meminfo, vmstat, cmdline, kallsyms head) and a perf map;
#   kernel   one record of each type the kernel programs write (built from bpf/kernel_events.h);
#   uprobe   BPF-only mode's uprobe records of each type, in real sequences (bpf/uprobe_events.h);
#   elf      a small shared library with DWARF, built plain, stripped, with compressed debug sections.
# Needs a debug build (swift build). Run from anywhere; rewrites the corpus directories.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
bin=$(swift build --show-bin-path)
corpus=$root/tools/fuzz/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$corpus"
mkdir -p "$corpus"/{ring,livetable,session,sessionedit,blobs,proc,kernel,uprobe,elf}
seeds=$root/tools/fuzz/seeds

# ring
cc -O1 -g -o "$work/ring-dump" "$seeds/ring-dump.c" -ldl
for mode in 0 1 2; do
    LD_PRELOAD=$bin/libleakshim.so LEAKSHIM_RING_SIZE=64K RING_DUMP_MODE=$mode "$work/ring-dump" "$work/ring.$mode"
done
python3 "$seeds/rings.py" "$corpus/ring" "$work"/ring.0 "$work"/ring.1 "$work"/ring.2

# livetable
cc -O1 -g -o "$work/live-holder" "$seeds/live-holder.c" -ldl
LD_PRELOAD=$bin/libleakshim.so "$work/live-holder" >"$work/live-holder.out" &
holder=$!
for _ in $(seq 50); do grep -q ready "$work/live-holder.out" && break; sleep 0.1; done
python3 "$seeds/livetable.py" "$holder" "$corpus/livetable/shim-process"
kill "$holder"

# session
cc -O0 -g -o "$work/leaky" tools/demo/leaky.c -lpthread
"$bin/leakcollect" --quiet -o "$work/demo.leaks" -- "$work/leaky" >/dev/null
RING_DUMP_MODE=1 "$bin/leakcollect" --quiet -o "$work/dlopen.leaks" -- "$work/ring-dump" "$work/unused" >/dev/null
python3 "$seeds/sessions.py" "$corpus/session" "$corpus/blobs" "$work/demo.leaks" "$work/dlopen.leaks"
# A kernel-mode session of one short-lived command (root and BPF; skipped where they are missing).
cp /bin/sleep "$work/kfuzzseed"
if "$bin/leakcollect" --kernel --quiet --duration 3s --comm kfuzzseed -o "$work/kernel.leaks" >/dev/null 2>&1 &
    sleep 1.5 && for i in 1 2 3 4; do "$work/kfuzzseed" 0.2; done && wait $! && [[ -s $work/kernel.leaks ]]; then
    python3 "$seeds/kernel-session.py" "$work/kernel.leaks" "$corpus/session/kernel"
else
    echo "make-corpus: no kernel session (needs root and BPF): the kernel seed is left out" >&2
fi
python3 "$seeds/edits.py" "$corpus/sessionedit"

# proc
cat /proc/self/maps >"$corpus/proc/maps"
cat /proc/self/status >"$corpus/proc/status"
cat /proc/meminfo >"$corpus/proc/meminfo"
cat /proc/vmstat >"$corpus/proc/vmstat"
cat /proc/loadavg >"$corpus/proc/loadavg"
printf 'leakcollect\0-o\0app.leaks\0--\0./app\0' >"$corpus/proc/cmdline"
head -c 4000 /proc/kallsyms | sed '$d' >"$corpus/proc/kallsyms"
grep ' \[' /proc/kallsyms | head -20 >>"$corpus/proc/kallsyms" || true
printf '7f1c2d000000 40 Interpreter\n7f1c2d000100 1a0 LFoo;::bar\n0x7f1c2d001000 0x80 java.lang.String::hashCode\n' >"$corpus/proc/perf-map"

# kernel
cc -O1 -o "$work/kernel-records" "$seeds/kernel-records.c"
"$work/kernel-records" "$corpus/kernel"

# uprobe
cc -O1 -o "$work/uprobe-records" "$seeds/uprobe-records.c"
"$work/uprobe-records" "$corpus/uprobe"

# elf
cc -O2 -g -shared -fPIC -o "$corpus/elf/module.so" "$seeds/module.c"
cc -O2 -g -gz=zlib -shared -fPIC -o "$corpus/elf/module-zdebug.so" "$seeds/module.c"
cp "$corpus/elf/module.so" "$work/stripped.so" && strip "$work/stripped.so" && cp "$work/stripped.so" "$corpus/elf/module-stripped.so"
cc -O0 -g -shared -fPIC -Wl,--build-id=sha1 -o "$corpus/elf/module-O0.so" "$seeds/module.c"

for t in "$corpus"/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds, $(du -sk "$t" | cut -f1) KiB"; done
