#!/usr/bin/python3
"""The overhead benchmark (run it through tools/bench/run.sh, which builds what it needs).

For each workload it runs, interleaved, RUNS times each: the program uninstrumented, under leakcollect
(the shim), leakcollect --bpf (a slot until BPF mode exists), heaptrack, the memleak-style bpftrace
uprobe script and valgrind memcheck (those two on a smaller size, with their own uninstrumented run).
Every process of a run reports its CPU time and peak RSS through procstats.so, so the program's and
the tool's are told apart. It checks that leakcollect's runs were exact (the known leaks, no lost
events, the program's own output and exit status), prints medians and ratios, checks the targets, and
counts the shim's instructions per allocation with callgrind, split into unwind, dedup and ring write.
Writes bench-results/bench.md and bench-results/bench.json.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, ".build", "bench")
RELEASE = os.path.join(ROOT, ".build", "release")
PYTHON = "/usr/bin/python3.11"  # Debian's, with libpython built without frame pointers
SQLITE = "/usr/bin/sqlite3"


class Workload:
    """A program and its arguments at full size and at the small size the slow tools run."""

    def __init__(self, name, full, small, threads, allocations, leaks_known, stdin=(None, None)):
        self.name, self.full, self.small = name, full, small
        self.stdin = stdin  # files for the full and the small run's standard input
        self.threads, self.allocations = threads, allocations
        self.leaks_known = leaks_known  # mallocbench prints its leaks; the real programs are checked by output


def sqlite_script(rows):
    """Inserts and queries: one transaction of single-row inserts, an index, joins, grouping, sorting."""
    path = os.path.join(BENCH, "sqlite-%d.sql" % rows)
    lines = ["CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, city TEXT, born INTEGER);",
             "CREATE TABLE orders(id INTEGER PRIMARY KEY, user INTEGER, item TEXT, price REAL);", "BEGIN;"]
    cities = ["Oslo", "Lima", "Pune", "Kyiv", "Accra", "Quito", "Hanoi"]
    for i in range(rows):
        lines.append("INSERT INTO users VALUES(%d,'user%05d','%s',%d);" % (i, (i * 7919) % rows, cities[i % 7], 1950 + i % 60))
        lines.append("INSERT INTO orders VALUES(%d,%d,'item-%d',%.2f);" % (i, (i * 31) % rows, i % 97, (i * 37 % 1000) / 7.0))
    lines += ["COMMIT;", "CREATE INDEX orders_user ON orders(user);", "CREATE INDEX users_city ON users(city);",
              "SELECT city, count(*), avg(born) FROM users GROUP BY city ORDER BY city;",
              "SELECT u.city, round(sum(o.price), 2) FROM users u JOIN orders o ON o.user = u.id GROUP BY u.city ORDER BY 2 DESC;",
              "SELECT name, price FROM users JOIN orders ON orders.user = users.id WHERE price > 140 ORDER BY price DESC, name LIMIT 5;",
              "SELECT item, count(*) FROM orders WHERE item LIKE 'item-1%' GROUP BY item ORDER BY 2 DESC, 1 LIMIT 5;",
              "UPDATE orders SET price = price * 1.1 WHERE user % 10 = 0;",
              "DELETE FROM orders WHERE id % 3 = 0;",
              "SELECT count(*), round(sum(price), 2) FROM orders;"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def workloads(pairs):
    small = max(pairs // 50, 1000)
    mb = lambda kind, n: [os.path.join(BENCH, "mallocbench-" + kind), "2", str(n)]
    py = os.path.join(ROOT, "tools", "bench", "pyworkload.py")
    return [
        Workload("mallocbench, frame pointers", mb("fp", pairs), mb("fp", small), 2, (pairs, small), True),
        Workload("mallocbench, no frame pointers", mb("nofp", pairs), mb("nofp", small), 2, (pairs, small), True),
        Workload("CPython 3.11 (json, re, hashlib)", [PYTHON, py, "60000"], [PYTHON, py, "3000"], 1, None, False),
        Workload("sqlite3 (inserts and queries)", [SQLITE, ":memory:"], [SQLITE, ":memory:"], 1, None, False,
                 stdin=(sqlite_script(20000), sqlite_script(1000))),
    ]


def libc_of(program):
    """The libc the program loads, as its loader resolves it (never a hard-coded path)."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    m = re.search(r"libc\.so\.6 => (\S+)", out)
    return os.path.realpath(m.group(1)) if m else "libc"


def has_bpf_mode():
    out = subprocess.run([os.path.join(RELEASE, "leakcollect"), "--help"], capture_output=True, text=True).stdout
    return "--bpf" in out


# Sampling at heapprofd's default interval: estimates, so not checked for exact figures.
SAMPLED = "leakcollect --sample-bytes 4096 (heapprofd's default interval)"
FLOOR = "preloaded malloc/free that only jump to glibc's (the floor of any LD_PRELOAD wrapper)"
SAMPLED_DEFAULT = "leakcollect --sample (512 KiB, the default interval; Go's and jemalloc's)"


class Tool:
    def __init__(self, name, argv, small=False, checked=False, env=None, missing=None):
        self.name, self.argv, self.small, self.checked = name, argv, small, checked
        self.env = env or {}
        self.missing = missing  # why it cannot run here, or None


def tools(session_dir):
    lc = os.path.join(RELEASE, "leakcollect")
    session = lambda tag: os.path.join(session_dir, tag + ".leaks")
    bt = os.path.join(ROOT, "tools", "bench", "memleak-uprobes.bt")
    bpf_missing = None if has_bpf_mode() else "not built yet (BPF-only mode is another issue)"
    return [
        Tool("uninstrumented", lambda a: a),
        Tool("leakcollect", lambda a: [lc, "--quiet", "-o", session("shim")] + ["--"] + a, checked=True),
        # What a process started with the shim pays while no collector is attached: the stack and the live
        # table that a later --attach reads (no ring records are written without a reader).
        Tool("libleakshim.so preloaded, no collector attached", lambda a: a,
             env={"LD_PRELOAD": os.path.join(RELEASE, "libleakshim.so")}),
        Tool("leakcollect, LEAKSHIM_UNWIND=libunwind (the old default)",
             lambda a: [lc, "--quiet", "-o", session("libunwind")] + ["--"] + a, env={"LEAKSHIM_UNWIND": "libunwind"}),
        Tool("leakcollect --bpf", lambda a: [lc, "--bpf", "--quiet", "-o", session("bpf")] + ["--"] + a, missing=bpf_missing),
        # Any preloaded wrapper's floor: malloc and free that only jump to glibc's (preload-floor.c).
        Tool(FLOOR, lambda a: a, env={"LD_PRELOAD": os.path.join(BENCH, "preload-floor.so")}),
        Tool(SAMPLED, lambda a: [lc, "--quiet", "--sample-bytes", "4096", "-o", session("sampled")] + ["--"] + a),
        Tool(SAMPLED_DEFAULT, lambda a: [lc, "--quiet", "--sample", "-o", session("sampled-default")] + ["--"] + a),
        Tool("heaptrack", lambda a: ["heaptrack", "-o", os.path.join(session_dir, "heaptrack")] + a),
        Tool("uninstrumented (small size)", lambda a: a, small=True),
        Tool("bpftrace uprobes (small size)",
             lambda a: ["bpftrace", bt, libc_of(a[0]), "-c", " ".join(a)], small=True),
        Tool("valgrind memcheck (small size)",
             lambda a: ["valgrind", "--tool=memcheck", "--leak-check=full", "--log-file=/dev/null"] + a, small=True),
    ]


def run_once(argv, env_extra, stats_file, stdin):
    if os.path.exists(stats_file):
        os.unlink(stats_file)
    env = dict(os.environ)
    env.update(env_extra)
    env["BENCH_PROCSTATS"] = stats_file
    env["LD_PRELOAD"] = os.path.join(BENCH, "procstats.so") + (":" + env_extra["LD_PRELOAD"] if "LD_PRELOAD" in env_extra else "")
    start = time.monotonic()
    with open(stdin or "/dev/null") as i:
        p = subprocess.run(argv, env=env, stdin=i, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.monotonic() - start
    procs = []
    if os.path.exists(stats_file):
        for line in open(stats_file):
            f = line.split()
            if len(f) == 8:
                procs.append({"pid": int(f[1]), "exe": f[3], "cpu_s": int(f[5]) / 1e6, "rss_mb": int(f[7]) / 1024})
    return {"wall_s": wall, "status": p.returncode, "stdout": p.stdout, "stderr": p.stderr, "procs": procs}


def split(result, program):
    """The program's CPU and peak RSS, and its tool's (every other process of the run)."""
    prog = os.path.realpath(program)
    app = [p for p in result["procs"] if p["exe"] == prog]
    other = [p for p in result["procs"] if p["exe"] != prog]
    result["app_cpu_s"] = sum(p["cpu_s"] for p in app)
    result["app_rss_mb"] = max([p["rss_mb"] for p in app], default=0)
    result["tool_cpu_s"] = sum(p["cpu_s"] for p in other)
    result["tool_rss_mb"] = max([p["rss_mb"] for p in other], default=0)


def leaks_printed(stderr):
    text = stderr.decode(errors="replace")
    b = re.search(r"leaked_blocks=(\d+)", text)
    n = re.search(r"leaked_bytes=(\d+)", text)
    return (int(b.group(1)), int(n.group(1))) if b and n else None


def check_session(path, w, result, base_stdout, base_status):
    """leakcollect's run must be exact; what failed, as a list of sentences."""
    problems = []
    rep = subprocess.run([os.path.join(RELEASE, "leakreport"), "top", path, "--format", "json", "--top", "100000"],
                         capture_output=True, text=True)
    if rep.returncode != 0:
        return ["leakreport failed: " + rep.stderr.strip()]
    report = json.loads(rep.stdout)
    counters = report.get("counters", {})
    result["counters"] = counters
    if counters.get("lost_events", 0) != 0:
        problems.append("lost_events = %d" % counters["lost_events"])
    if w.leaks_known:
        known = leaks_printed(result["stderr"])
        totals = report["totals"]
        got = (totals["outstanding_blocks"], totals["outstanding_bytes"])
        if known != got:
            problems.append("reported %s leaked blocks/bytes, the program leaked %s" % (got, known))
        # Every leaked block is charged to leaf() called through down() from worker().
        bad = [s for s in report["stacks"] if [f.get("function") for f in s["frames"]][:2] != ["leaf", "down"]
               or "worker" not in [f.get("function") for f in s["frames"]]]
        if bad:
            problems.append("%d stacks do not read leaf, down, ..., worker" % len(bad))
    if result["stdout"] != base_stdout or result["status"] != base_status:
        problems.append("output or exit status differs from the uninstrumented run")
    return problems


def median(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else None


def measure(w, ts, runs, session_dir):
    results = {t.name: [] for t in ts}
    problems = []
    for rep in range(runs):
        for t in ts:
            if t.missing:
                continue
            program = w.small if t.small else w.full
            r = run_once(t.argv(program), t.env, os.path.join(session_dir, "procstats.txt"), w.stdin[t.small])
            split(r, program[0])
            if t.checked:
                base = results["uninstrumented"][-1]
                for p in check_session(os.path.join(session_dir, "shim.leaks"), w, r, base["stdout"], base["status"]):
                    problems.append("run %d: %s" % (rep + 1, p))
            elif r["status"] != 0:
                problems.append("run %d: %s exited with %d: %s" % (rep + 1, t.name, r["status"],
                                                                   r["stderr"].decode(errors="replace")[-300:]))
            results[t.name].append(r)
            sys.stderr.write("  %-60s %7.2f s\n" % (t.name, r["wall_s"]))
    return results, problems


def summarize(w, ts, results):
    rows = []
    base = {False: results["uninstrumented"], True: results["uninstrumented (small size)"]}
    heap = results["heaptrack"]
    for t in ts:
        row = {"tool": t.name, "small": t.small}
        if t.missing:
            row["missing"] = t.missing
            rows.append(row)
            continue
        rs, b = results[t.name], base[t.small]
        for k in ("wall_s", "app_cpu_s", "app_rss_mb", "tool_cpu_s", "tool_rss_mb"):
            row[k] = median(rs, k)
        bw, bc, br = median(b, "wall_s"), median(b, "app_cpu_s"), median(b, "app_rss_mb")
        row["wall_x"] = row["wall_s"] / bw
        row["app_cpu_x"] = row["app_cpu_s"] / bc if bc else None
        row["app_rss_x"] = row["app_rss_mb"] / br if br else None
        row["tool_cpu_x"] = row["tool_cpu_s"] / bc if bc else None
        row["tool_rss_x"] = row["tool_rss_mb"] / br if br else None
        if not t.small:
            hw = median(heap, "wall_s")
            row["vs_heaptrack"] = (row["wall_s"] - bw) / (hw - bw)
            # The same with CPU time (program and tool together): far less sensitive to other load.
            hc = median(heap, "app_cpu_s") + median(heap, "tool_cpu_s")
            row["cpu_vs_heaptrack"] = (row["app_cpu_s"] + row["tool_cpu_s"] - bc) / (hc - bc)
        if t.checked:
            waits = [r["counters"].get("ring_wait_ns", 0) / 1e9 for r in rs if "counters" in r]
            events = [r["counters"].get("events", 0) for r in rs if "counters" in r]
            row["ring_wait_s"] = max(waits) if waits else None
            # ring_wait_ns sums every thread's waits: its share of the threads' time together.
            row["ring_wait_share"] = max(x / (w.threads * r["wall_s"]) for x, r in zip(waits, rs)) if waits else None
            row["events"] = statistics.median(events) if events else None
            row["unwind_fallbacks"] = max((r["counters"].get("unwind_fallbacks", 0) for r in rs if "counters" in r), default=None)
            row["collector_ns_per_event"] = row["tool_cpu_s"] * 1e9 / row["events"] if row["events"] else None
        rows.append(row)
    return rows


def fmt(x, spec, suffix=""):
    return ("%" + spec + "%s") % (x, suffix) if x is not None else "–"


def table(w, rows):
    out = ["#### %s" % w.name, "",
           "| how it ran | wall | app CPU | app peak RSS | tool CPU | tool peak RSS | overhead / heaptrack's | CPU overhead / heaptrack's |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "missing" in r:
            out.append("| %s | %s | | | | | | |" % (r["tool"], r["missing"]))
            continue
        out.append("| %s | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s | %s |" % (
            r["tool"], fmt(r["wall_s"], ".2f", " s"), fmt(r["wall_x"], ".2f", "×"),
            fmt(r["app_cpu_s"], ".2f", " s"), fmt(r["app_cpu_x"], ".2f", "×"),
            fmt(r["app_rss_mb"], ".0f", " MB"), fmt(r["app_rss_x"], ".2f", "×"),
            fmt(r["tool_cpu_s"], ".2f", " s"), fmt(r["tool_cpu_x"], ".2f", "×"),
            fmt(r["tool_rss_mb"], ".0f", " MB"), fmt(r["tool_rss_x"], ".1f", "×"), fmt(r.get("vs_heaptrack"), ".2f"),
            fmt(r.get("cpu_vs_heaptrack"), ".2f")))
    return out


# ---- callgrind: the shim's instructions per allocation

def callgrind(w, mode):
    """Instructions per malloc+free pair inside the shim (the real allocator's excluded), split up."""
    shim = os.path.join(BENCH, "libleakshim-nodebug.so")  # valgrind 3.19 cannot read clang's DWARF 5
    out = os.path.join(BENCH, "callgrind.out")
    for f in os.listdir(BENCH):
        if f.startswith("callgrind.out"):
            os.unlink(os.path.join(BENCH, f))
    argv = w.small
    env = ["env", "LD_PRELOAD=" + shim, "LEAKSHIM_RING_SIZE=1g", "LEAKSHIM_UNWIND=" + mode]
    subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes", "--callgrind-out-file=" + out + ".%p"]
                   + env + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    files = sorted((os.path.join(BENCH, f) for f in os.listdir(BENCH) if f.startswith("callgrind.out")),
                   key=os.path.getsize)
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", files[-1]],
                          capture_output=True, text=True).stdout
    incl = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S+?):(\S+) \[(.+)\]$", line)
        if m:
            key = (m.group(3), os.path.basename(m.group(4)))
            incl[key] = incl.get(key, 0) + int(m.group(1).replace(",", ""))
    def f(fn, obj="libleakshim-nodebug.so"):
        return incl.get((fn, obj), 0)
    pairs = w.threads * w.allocations[1]
    libc = f("malloc", "libc.so.6") + f("free", "libc.so.6") + f("cfree@GLIBC_2.2.5", "libc.so.6")
    total = f("malloc") + f("free") - libc
    unwind = f("ls_stack_capture") - f("intern")
    dedup = f("intern")
    live = f("ls_live_insert") + f("ls_live_remove")  # the live table late attach reads
    return {"mode": mode, "total": total / pairs, "unwind": unwind / pairs, "dedup": dedup / pairs,
            "live_table": live / pairs, "ring_and_wrapper": (total - unwind - dedup - live) / pairs}


def machine():
    cpu = re.search(r"Model name:\s*(.+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    distro = re.search(r'PRETTY_NAME="(.+)"', open("/etc/os-release").read())
    ver = lambda argv: subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
    return "%d cores (%s), %.0f GiB, %s, kernel %s; %s, %s, %s" % (
        os.cpu_count(), cpu.group(1) if cpu else "?", mem, distro.group(1) if distro else "?", os.uname().release,
        ver(["heaptrack", "--version"]), ver(["bpftrace", "--version"]), ver(["valgrind", "--version"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=2000000, help="mallocbench allocations per thread")
    ap.add_argument("--only", help="run only workloads whose name contains this")
    ap.add_argument("--skip", action="append", default=[],
                    help="leave out the tools whose name contains this (repeatable; not leakcollect or heaptrack, "
                         "which the verdicts compare); e.g. --skip 'leakcollect --bpf', which tools/bench/bpf-mode.sh "
                         "measures at a size uprobes finish in")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    session_dir = os.path.join(BENCH, "sessions")
    os.makedirs(session_dir, exist_ok=True)
    ts = tools(session_dir)
    for t in ts:
        if t.name not in ("uninstrumented", "uninstrumented (small size)", "leakcollect", "heaptrack") and any(k in t.name for k in args.skip):
            t.missing = "left out (--skip)"
    report = {"machine": machine(), "runs": args.runs, "workloads": []}
    md = ["Machine: " + report["machine"] + ".", "",
          "Wall time to the command's return, CPU time and peak RSS of the program and of its tool (every "
          "other process of the run), median of %d interleaved runs; in brackets the ratio to the "
          "uninstrumented program of the same size (the tool's too). Overhead / heaptrack's: "
          "(wall − uninstrumented) / (heaptrack − uninstrumented); CPU overhead / heaptrack's: the same with "
          "the CPU time of the program and its tool together. Load average when it started: %s." % (
              args.runs, open("/proc/loadavg").read().split()[0]), ""]
    failed = []
    for w in workloads(args.pairs):
        if args.only and args.only not in w.name:
            continue
        sys.stderr.write("%s\n" % w.name)
        results, problems = measure(w, ts, args.runs, session_dir)
        rows = summarize(w, ts, results)
        md += table(w, rows)
        lc = next(r for r in rows if r["tool"] == "leakcollect")
        goal = 0.2 if w.leaks_known else 1 / 3
        verdicts = ["leakcollect's overhead is %.2f of heaptrack's (target at most %.2f): %s" % (
            lc["vs_heaptrack"], goal, "met" if lc["vs_heaptrack"] <= goal else "NOT MET")]
        verdicts.append("writers waited on a full ring %.3f s at most (all threads), %.1f%% of their run time on "
                        "average (target at most 5%% for each thread): %s" % (
            lc["ring_wait_s"], 100 * lc["ring_wait_share"], "met" if lc["ring_wait_share"] <= 0.05 else "NOT MET"))
        ht = next(r for r in rows if r["tool"] == "heaptrack")
        base = next(r for r in rows if r["tool"] == "uninstrumented")
        verdicts.append("CPU added inside the program: leakcollect %.2f s, heaptrack %.2f s; CPU of the tool itself: "
                        "leakcollect %.2f s, heaptrack %.2f s" % (
                            lc["app_cpu_s"] - base["app_cpu_s"], ht["app_cpu_s"] - base["app_cpu_s"],
                            lc["tool_cpu_s"], ht["tool_cpu_s"]))
        verdicts.append("the collector spent %.0f ns of CPU per event (%.1f M events); stacks the shim handed to "
                        "libunwind: %d" % (lc["collector_ns_per_event"], lc["events"] / 1e6, lc["unwind_fallbacks"]))
        for name, interval in ((SAMPLED, "4096 bytes"), (SAMPLED_DEFAULT, "the default, 512 KiB")):
            sampled = next((r for r in rows if r["tool"] == name and "missing" not in r), None)
            if not sampled or not w.leaks_known:
                continue
            # The program's own CPU time is where the shim's work lands; the wall time also holds the
            # collector's fixed start and finish (process start, session file, symbolizing), which on a
            # 0.1 s program is most of the difference.
            cpu = sampled["app_cpu_s"] / base["app_cpu_s"] - 1 if base["app_cpu_s"] else None
            floor = next((r for r in rows if r["tool"] == FLOOR and "missing" not in r), None)
            verdicts.append("sampling at %s: the program's CPU time %+.1f%% of uninstrumented (target under 10%%): %s; "
                            "wall to the command's return %+.1f%%, the collector's start and finish included; "
                            "a preloaded wrapper that only jumps to glibc: %s" % (
                                interval, 100 * cpu, "met" if cpu is not None and cpu < 0.10 else "NOT MET",
                                100 * (sampled["wall_x"] - 1),
                                "%+.1f%%" % (100 * (floor["app_cpu_x"] - 1)) if floor else "not run"))
        verdicts.append("exact (known leaks, lost_events 0, same output and exit status): %s" % (
            "yes" if not problems else "NO: " + "; ".join(problems)))
        if w.allocations:
            for mode in ("cfi", "libunwind"):
                c = callgrind(w, mode)
                # No collector is attached under callgrind: no ring records, only the live table.
                verdicts.append("callgrind, LEAKSHIM_UNWIND=%s, no collector attached: %.0f instructions per malloc+free "
                                "in the shim: unwind %.0f, dedup %.0f, live table %.0f, wrapper %.0f" % (
                                    "default" if mode == "cfi" else mode, c["total"], c["unwind"], c["dedup"],
                                    c["live_table"], c["ring_and_wrapper"]))
                rows.append({"callgrind": c})
        md += [""] + ["- " + v for v in verdicts] + [""]
        failed += [w.name + ": " + v for v in verdicts if "NOT MET" in v or "NO:" in v]
        report["workloads"].append({"name": w.name, "rows": rows, "problems": problems})
    md.append("Reproduce: `sudo tools/bench/run.sh` (%s)." % " ".join(sys.argv[1:]) if sys.argv[1:] else
              "Reproduce: `sudo tools/bench/run.sh`.")
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(report, f, indent=1, default=lambda o: None)
    print("\n".join(md))
    if failed:
        print("\nTargets not met:\n" + "\n".join("  " + x for x in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
