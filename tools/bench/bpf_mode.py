#!/usr/bin/python3
"""BPF-only mode against bpftrace's uprobe script and the uninstrumented program (run it through
tools/bench/bpf-mode.sh, which builds what it needs).

Each run is mallocbench (2 threads, PAIRS malloc+free pairs each, frame pointers) six ways,
interleaved RUNS times. The figure compared is the program's own work time (it prints elapsed_ns),
which leaves out each tool's start-up (bpftrace compiles its script; leakcollect loads its programs):
overhead = work time under the tool - uninstrumented work time, per malloc+free pair.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, ".build", "bench")


def libc_of(program):
    out = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    m = re.search(r"libc\.so\.6 => (\S+)", out)
    return os.path.realpath(m.group(1)) if m else "libc"


def run(argv):
    start = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True)
    wall = time.monotonic() - start
    m = re.search(r"elapsed_ns=(\d+)", p.stderr)
    leaked = re.search(r"leaked_blocks=(\d+)", p.stderr)
    if p.returncode != 0 or not m:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(argv), p.stderr[-2000:]))
    return int(m.group(1)) / 1e9, wall, int(leaked.group(1)) if leaked else None


SAMPLED = "leakcollect --bpf --sample (512 KiB)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=".build/release")
    ap.add_argument("--pairs", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    lc = os.path.join(ROOT, a.build, "leakcollect")
    lr = os.path.join(ROOT, a.build, "leakreport")
    prog = [os.path.join(BENCH, "mallocbench-fp"), "2", str(a.pairs)]
    bt = os.path.join(ROOT, "tools", "bench", "memleak-uprobes.bt")
    tmp = tempfile.mkdtemp(prefix="bpf-bench-")
    session = os.path.join(tmp, "bpf.leaks")
    sampled = os.path.join(tmp, "bpf-sampled.leaks")
    ways = [
        ("uninstrumented", lambda: prog),
        ("leakcollect --bpf", lambda: [lc, "--bpf", "--quiet", "-o", session, "--"] + prog),
        # Sampling at the default interval: the traps stay (every call is still probed), the stack walks
        # and records of the sampled-out calls go.
        (SAMPLED, lambda: [lc, "--bpf", "--sample", "--quiet", "-o", sampled, "--"] + prog),
        ("bpftrace uprobes (memleak-uprobes.bt)", lambda: ["bpftrace", bt, libc_of(prog[0]), "-c", " ".join(prog)]),
        # What every uprobe approach pays before doing anything: the traps of an empty entry probe on
        # malloc and on free (the floor), and of an empty return probe on malloc besides.
        ("floor: empty uprobes on malloc and free (bpftrace)",
         lambda: ["bpftrace", "-e", "uprobe:%s:malloc /pid == cpid/ {} uprobe:%s:free /pid == cpid/ {}" % ((libc_of(prog[0]),) * 2),
                  "-c", " ".join(prog)]),
        ("floor + empty uretprobe on malloc (bpftrace)",
         lambda: ["bpftrace", "-e", "uprobe:%s:malloc /pid == cpid/ {} uretprobe:%s:malloc /pid == cpid/ {} uprobe:%s:free /pid == cpid/ {}"
                  % ((libc_of(prog[0]),) * 3), "-c", " ".join(prog)]),
    ]
    work = {n: [] for n, _ in ways}
    wall = {n: [] for n, _ in ways}
    exact = []
    for _ in range(a.runs):
        for name, argv in ways:
            w, t, leaked = run(argv())
            work[name].append(w)
            wall[name].append(t)
            if name == "leakcollect --bpf":
                report = json.loads(subprocess.run([lr, "top", session, "--format", "json", "--top", "100000"],
                                                   capture_output=True, text=True, check=True).stdout)
                blocks = sum(s["blocks"] for s in report["stacks"] if any(f.get("function") == "leaf" for f in s["frames"]))
                exact.append((blocks == leaked, report["totals"]["lost_events"], blocks, leaked))
    base = statistics.median(work["uninstrumented"])
    pairs = 2 * a.pairs
    print("mallocbench, 2 threads x %d malloc+free pairs, frame pointers; median of %d interleaved runs" % (a.pairs, a.runs))
    print("load average at the end: %s" % open("/proc/loadavg").read().split()[0:3])
    print()
    print("| how it ran | program's work time | wall time | overhead per malloc+free |")
    print("|---|---|---|---|")
    over = {}
    for name, _ in ways:
        w = statistics.median(work[name])
        over[name] = w - base
        print("| %s | %.3f s (%.1fx) | %.2f s | %s |" % (name, w, w / base, statistics.median(wall[name]),
                                                    "–" if name == "uninstrumented" else "%.0f ns" % (over[name] / pairs * 1e9)))
    ratio = over["leakcollect --bpf"] / over["bpftrace uprobes (memleak-uprobes.bt)"]
    floor = over["floor + empty uretprobe on malloc (bpftrace)"]
    print()
    print("- above the traps every uprobe approach pays (entry+return on malloc, entry on free): BPF mode %.0f ns, bpftrace %.0f ns per pair"
          % ((over["leakcollect --bpf"] - floor) / pairs * 1e9, (over["bpftrace uprobes (memleak-uprobes.bt)"] - floor) / pairs * 1e9))
    print("- sampling at the default interval, above the same traps: %.0f ns per pair (full BPF mode: %.0f ns)"
          % ((over[SAMPLED] - floor) / pairs * 1e9, (over["leakcollect --bpf"] - floor) / pairs * 1e9))
    ok_exact = all(e[0] and e[1] == 0 for e in exact)
    print("- BPF mode's overhead is %.2f of bpftrace's (target at most 0.33): %s" % (ratio, "met" if ratio <= 1 / 3 else "NOT MET"))
    print("- BPF mode exact (every leaked block charged through leaf, lost_events 0): %s %s" % ("yes" if ok_exact else "NO", exact))
    return 0 if ratio <= 1 / 3 and ok_exact else 1


if __name__ == "__main__":
    sys.exit(main())
