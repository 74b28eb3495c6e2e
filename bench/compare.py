#!/usr/bin/env python3
"""Compares two builds of gort on the same workloads, interleaved.

    bench/compare.py BEFORE_BENCH_DIR AFTER_BENCH_DIR [workload ...]

Each directory is a `bench/` whose `target/release/gort_bench` is built (for
example `bench/` of a `git worktree add /tmp/before <commit>` checkout,
built with `cargo build --release --bin gort_bench` there). Every round runs
one process of each build in turn (the order alternates between rounds), so
that a slow spell of a shared machine hits both alike. Sizes are the full
run's (driver.py); ROUNDS=5 by default (`COMPARE_ROUNDS`). Prints a markdown
table: median and min–max over every repetition of every round, and
after / before.
"""

import os
import re
import statistics
import subprocess
import sys

import driver


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    dirs = {"before": sys.argv[1], "after": sys.argv[2]}
    workloads = sys.argv[3:] or ["yield", "spawn_join", "chan_pingpong", "tcp_echo"]
    rounds = int(os.environ.get("COMPARE_ROUNDS", "5"))
    plan = driver.sizes(False)
    bins = {k: os.path.join(d, "target", "release", "gort_bench") for k, d in dirs.items()}
    for k, b in bins.items():
        if not os.access(b, os.X_OK):
            sys.exit(f"compare.py: {k}: no {b} (build it first)")
    vals = {(w, k): [] for w in workloads for k in dirs}
    unknown = [w for w in workloads if w not in plan or w == "rounds"]
    if unknown:
        sys.exit(f"compare.py: unknown workloads {unknown}")
    for w in workloads:
        n, reps = plan[w]["gort"]
        for rnd in range(rounds):
            order = ["before", "after"] if rnd % 2 == 0 else ["after", "before"]
            for k in order:
                print(f"compare {w} {k} n={n:,} round {rnd + 1}/{rounds}", file=sys.stderr, flush=True)
                res, err = run(bins[k], w, n, reps)
                if err:
                    sys.exit(f"compare.py: {w} {k}: {err}")
                vals[(w, k)] += [float(v) for r in res for v in metric(w, r)]
    print(f"Interleaved, {rounds} rounds, one process per build per round; machine: "
          f"{os.cpu_count()} CPUs; before: {describe(dirs['before'])}; after: {describe(dirs['after'])}")
    print()
    print("| workload | n | before: median (min – max) | after: median (min – max) | after / before |")
    print("|---|--:|--:|--:|--:|")
    for w in workloads:
        b, a = vals[(w, "before")], vals[(w, "after")]
        unit = "µs" if w.startswith("blocking") else "ns"
        f = lambda v: f"{driver.fmt(statistics.median(v), unit)} ({driver.fmt(min(v), unit)} – {driver.fmt(max(v), unit)})"
        print(f"| {w} | {plan[w]['gort'][0]:,} | {f(b)} | {f(a)} | {driver.ratio_text(statistics.median(a) / statistics.median(b))} |")


def metric(w, r):
    if w.startswith("blocking"):
        return r["delays_ns"].split(",")
    return [r["ns_per_op"]]


def run(binary, w, n, reps):
    p = subprocess.run([binary, w, str(n), str(reps)], capture_output=True, text=True,
                       timeout=600, env=driver.child_env())
    res = [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', l)) for l in p.stdout.splitlines() if l.startswith("result ")]
    if p.returncode != 0 or len(res) != reps:
        return [], f"exit {p.returncode}, {len(res)} results: {p.stderr.strip()[-300:]}"
    return res, None


def describe(d):
    commit = driver.cmd_out(["git", "-C", d, "rev-parse", "--short", "HEAD"])
    return f"gort at {commit} ({d})"


if __name__ == "__main__":
    main()
