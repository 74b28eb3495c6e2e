#!/usr/bin/env python3
"""Runs gort's scheduler benchmarks and prints a markdown table.

Called by bench/run.sh after it has built the binaries (target/release/
*_bench and target/go_bench). Every process runs one workload of one
implementation. `yield` and `spawn_join` repeat in-process after a warm-up;
`parked` measures once per process (after one warm-up process at a tenth of
the size), `blocking*` pools the delay of every round of every process, each process started right after `prefault` has touched and freed
as much memory as it needs (see there). Full mode runs 5 rounds, each round one process per
implementation in turn, so that a slow spell of the (shared, virtual)
machine hits every implementation alike; the table shows the median, min and
max over all repetitions of all rounds.

A process that fails (may's map limit, a thread limit) is reported with the
count it reached and retried at a smaller size that runs; the table shows
that size and lists the failure.

Output: the markdown (header + table) on stdout; every raw result line also
goes to target/bench-results.txt.
"""

import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REL = os.path.join(HERE, "target", "release")
IMPLS = ["gort", "may", "tokio", "go", "threads"]

# Targets from the issue (gort only): (comparison, limit, text).
TARGETS = {
    "yield": (20.0, "≤ 20 ns"),
    "spawn_join": (250.0, "≤ 250 ns"),
    "parked_create": (2.0, "≤ 2 s per 1M (2 µs)"),
    "parked_rss": (5.0, "≤ 5 KiB"),
    # No target from the issue: compared with the peers only.
    "mutex": (None, "none (compared with peers)"),
    "chan_pingpong": (120.0, "≤ 120 ns"),
    "chan_mpmc": (None, "none (compare)"),
    # Relative: judged against Go's and may's medians in the same run.
    "tcp_echo": (None, "≤ Go's and may's ns per request"),
    "blocking": (None, "≤ Go's delay"),
    "blocking_read": (None, "≤ Go's delay"),
}


def sizes(quick):
    """(n, reps per process) per workload and impl, and the number of rounds
    (processes per (workload, impl))."""
    if quick:
        return {
            "rounds": 1,
            "yield": {i: (10_000, 1) for i in IMPLS},
            "spawn_join": {i: (100 if i == "threads" else 1_000, 1) for i in IMPLS},
            "parked": {i: (100 if i == "threads" else 1_000, 1) for i in IMPLS},
            "skynet": {i: (100 if i == "threads" else 1_000, 1) for i in IMPLS},
            "mutex": {i: (100, 1) for i in IMPLS},
            "chan_pingpong": {i: (1_000 if i == "threads" else 10_000, 1) for i in IMPLS},
            "chan_mpmc": {i: (10_000, 1) for i in IMPLS},
            "tcp_echo": {i: (50, 1) for i in IMPLS},
            "blocking": {i: (5, 1) for i in IMPLS},
            "blocking_read": {i: (5, 1) for i in IMPLS},
        }
    return {
        # BENCH_ROUNDS=3 for a shorter full run.
        "rounds": int(os.environ.get("BENCH_ROUNDS", "5")),
        "yield": {i: (100_000 if i == "threads" else 1_000_000, 3) for i in IMPLS},
        "spawn_join": {i: (10_000 if i == "threads" else 100_000, 3) for i in IMPLS},
        "parked": {i: (10_000 if i == "threads" else 1_000_000, 1) for i in IMPLS},
        "skynet": {i: (10_000 if i == "threads" else 1_000_000, 3) for i in IMPLS},
        "mutex": {i: (10_000, 3) for i in IMPLS},
        "chan_pingpong": {i: (100_000 if i == "threads" else 1_000_000, 3) for i in IMPLS},
        "chan_mpmc": {i: (200_000 if i == "threads" else 1_000_000, 3) for i in IMPLS},
        "tcp_echo": {i: (1_000, 3) for i in IMPLS},
        # Rounds of a 20 ms blocking call: the table pools every round's
        # delay over all processes.
        "blocking": {i: (21, 1) for i in IMPLS},
        "blocking_read": {i: (21, 1) for i in IMPLS},
    }


def binary(impl):
    if impl == "go":
        return os.path.join(HERE, "target", "go_bench")
    return os.path.join(REL, f"{impl}_bench")


def child_env():
    env = dict(os.environ)
    # Defaults everywhere: each binary sets what its workload needs itself.
    for k in list(env):
        if k.startswith("GORT_") or k in ("GOMAXPROCS", "GOGC", "GODEBUG", "RUST_BACKTRACE"):
            del env[k]
    env["RUST_BACKTRACE"] = "0"
    return env


RAW = []
def cpu_times():
    """(busy, steal) seconds of the whole machine since boot, from /proc/stat."""
    try:
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = f[:7]
    steal = f[7] if len(f) > 7 else 0
    return (user + nice + system + irq + softirq) / hz, steal / hz


def own_cpu():
    """CPU seconds used by this driver and its finished children."""
    import resource

    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


# First-touch costs (ns per page) seen by `prefault`, for the header.
PREFAULT_NS = []


def prefault(n):
    """Touches and frees about as much memory as `parked` with n units needs
    (6 KiB a unit, at most 60% of the available memory) just before such a
    process starts. On a virtual machine whose host backs guest memory
    lazily and takes freed pages back (virtio-balloon free page reporting),
    the first touch of a page the host no longer backs costs several times a
    warm one, and which process meets such pages depended on which ran
    before it. Starting every `parked` process right after this, each finds
    the kernel's free pages backed alike."""
    try:
        avail = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return
    mib = min(n * 6 // 1024, avail * 6 // 10 // 1024)
    if mib < 64:
        return
    out = cmd_out([os.path.join(REL, "calibrate"), str(mib)], timeout=300)
    m = re.search(r"page_fault_ns=(\d+)", out)
    if m:
        PREFAULT_NS.append(int(m.group(1)))


def run(impl, workload, n, reps, timeout):
    """Runs one process. Returns (results, error): results is a list of
    dicts (one per `result` line); error is None or (reached, message)."""
    cmd = [binary(impl), workload, str(n), str(reps)]
    if workload == "parked" and timeout > 120:
        prefault(n)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env())
    except subprocess.TimeoutExpired:
        return [], (None, f"timed out after {timeout} s")
    results, error = [], None
    for line in p.stdout.splitlines():
        RAW.append(line)
        kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        if line.startswith("result "):
            results.append(kv)
        elif line.startswith("error "):
            error = (int(kv["reached"]), kv["msg"].strip('"').strip())
    if p.returncode != 0 and error is None:
        err = [l for l in p.stderr.splitlines() if l.strip()]
        msg = next((l for l in err if "panicked" not in l and "note:" not in l), "")
        error = (None, f"exit {p.returncode}: {msg or (err[-1] if err else '')}".strip())
    if p.returncode != 0:
        RAW.append(f"# {' '.join(cmd)}: exit {p.returncode}: {error}")
    return results, error


def smaller(n, reached, workload=""):
    """A size likely to run after a failure at n (reached units existed)."""
    if workload == "skynet":
        return n // 10  # sizes are powers of 10
    m = int(reached * 0.9) if reached else n // 10
    if m <= 0:
        return 0
    digits = len(str(m)) - 2
    return m if digits <= 0 else (m // 10**digits) * 10**digits


def one_process(impl, workload, n, reps, timeout):
    """One process; returns (values, error)."""
    res, err = run(impl, workload, n, reps, timeout)
    if err is None and len(res) != reps:
        err = (None, "missing results")
    return (res if err is None else []), err


def measure(impl, workload, n, reps, timeout):
    """The first round of (workload, impl): finds a size that runs, retrying
    smaller after a failure. Returns a row: dict(n, values, failures); n is
    None if no size ran."""
    failures = []
    while n > 0:
        if workload == "parked" and timeout > 120:
            # Warm-up process (binary, page cache, the kernel's free pages);
            # its failure is not reported: the measured size fails too.
            run(impl, workload, max(n // 10, 1), 1, timeout)
        values, err = one_process(impl, workload, n, reps, timeout)
        if err is None:
            return {"n": n, "values": values, "failures": failures}
        failures.append((n, err))
        n = smaller(n, err[0], workload)
        if len(failures) >= 3 or n < 1000:
            break
    return {"n": None, "values": [], "failures": failures}


def cmd_out(args, timeout=30):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def lock_version(name):
    path = os.path.join(HERE, "Cargo.lock")
    try:
        text = open(path).read()
    except OSError:
        return "?"
    m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), text)
    return m.group(1) if m else "?"


def header(quick):
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    calib = cmd_out([os.path.join(REL, "calibrate")])
    m = re.search(r"page_fault_ns=(\d+)", calib)
    fault = f"{int(m.group(1)):,} ns" if m else "?"
    commit = cmd_out(["git", "-C", HERE, "rev-parse", "--short", "HEAD"])
    dirty = cmd_out(["git", "-C", HERE, "status", "--porcelain", "--", "..", ":!bench"])
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu}, {mem} RAM; kernel {platform.release()}",
        f"- first touch of an anonymous page (the `calibrate` binary): {fault}",
        f"- {cmd_out(['rustc', '--version'])}; {cmd_out(['go', 'version'])}",
        f"- crates: may {lock_version('may')}, tokio {lock_version('tokio')}; gort at {commit}"
        + (" (with uncommitted changes)" if dirty else ""),
        "- mode: " + ("--quick (tiny sizes, 1 repetition: a smoke test, not a measurement)" if quick else f"full: {sizes(False)['rounds']} rounds; 3 repetitions per process after a warm-up, parked 1 per process, blocking* {sizes(False)['blocking']['gort'][0]} rounds per process"),
    ]
    return "\n".join(lines)


def fmt(x, unit):
    if unit == "s":
        return f"{x:.2f} s" if x >= 1 else f"{x * 1e3:.1f} ms"
    if unit == "KiB":
        return f"{x:.2f} KiB"
    if unit == "µs":
        return f"{x / 1000:,.1f} µs"
    if x >= 10_000:
        return f"{x / 1000:,.1f} µs"
    if x >= 100:
        return f"{x:,.0f} ns"
    return f"{x:.1f} ns"


METRICS = [
    # (key, run, label, unit)
    ("yield", "yield", "yield: ns per switch", "ns"),
    ("spawn_join", "spawn_join", "spawn_join: ns per unit", "ns"),
    ("parked_create", "parked", "parked: time until all parked", "s"),
    ("parked_rss", "parked", "parked: RSS per unit", "KiB"),
    ("skynet", "skynet", "skynet: ns per unit (10-way tree, units = 1.11 × leaves)", "ns"),
    ("mutex", "mutex", "mutex: ns per lock/unlock, 100 units", "ns"),
    ("chan_pingpong", "chan_pingpong", "chan_pingpong: ns per round trip", "ns"),
    ("chan_mpmc", "chan_mpmc", "chan_mpmc (4+4, cap 128): ns per value", "ns"),
    ("tcp_echo", "tcp_echo", "tcp_echo: ns per request", "ns"),
    ("blocking", "blocking", "blocking: wake-up delay, its worker in sleep(20 ms); n = rounds per process", "µs"),
    ("blocking_read", "blocking_read", "blocking_read: wake-up delay, its worker in read(2) on a pipe (20 ms)", "µs"),
]


def values(key, row):
    if key == "parked_create":
        return [float(v["create_ms"]) / 1e3 for v in row["values"]]
    if key == "parked_rss":
        return [float(v["rss_kib_per_unit"]) for v in row["values"]]
    if key in ("blocking", "blocking_read"):
        # Every round's delay, not each process's median.
        return [float(d) for v in row["values"] for d in v["delays_ns"].split(",")]
    return [float(v["ns_per_op"]) for v in row["values"]]


def ratio_text(r):
    """peer / gort, with 3 significant digits below 0.1 (`blocking`'s
    ratios span four orders of magnitude)."""
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.3g}×"


def table(runs, quick):
    """runs: {(workload, impl): row from measure()}. Returns (table, notes)."""
    out = [
        "| workload | impl | n | median | min – max | vs gort | gort target |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for key, workload, label, unit in METRICS:
        gort_med = None
        for impl in IMPLS:
            row = runs.get((workload, impl))
            if row is None:
                continue
            if row["n"] is None:
                fn, (reached, _) = row["failures"][-1]
                what = f"failed at n={fn:,}" + (f", reached {reached:,}" if reached is not None else "")
                out.append(f"| {label} | {impl} | – | {what} | | | |")
                continue
            vals = values(key, row)
            med, lo, hi = statistics.median(vals), min(vals), max(vals)
            if impl == "gort":
                gort_med = med
            ratio = "1.00×" if impl == "gort" else (ratio_text(med / gort_med) if gort_med else "–")
            target = ""
            if impl == "gort" and quick:
                target = "(not judged by --quick)"
            elif impl == "gort" and key in ("tcp_echo", "blocking", "blocking_read"):
                peers = [statistics.median(values(key, runs[(workload, p)]))
                         for p in (("go", "may") if key == "tcp_echo" else ("go",))
                         if runs.get((workload, p)) and runs[(workload, p)]["n"] is not None]
                met = bool(peers) and med <= min(peers)
                target = f"{TARGETS[key][1]}: {'met' if met else 'missed'}"
            elif impl == "gort" and key in TARGETS:
                limit, text = TARGETS[key]
                value = med / row["n"] * 1e6 if key == "parked_create" else med
                target = text if limit is None else f"{text}: {'met' if value <= limit else 'missed'}"
            out.append(
                f"| {label} | {impl} | {row['n']:,} | {fmt(med, unit)} | {fmt(lo, unit)} – {fmt(hi, unit)} | {ratio} | {target} |"
            )
    notes = []
    for (workload, impl), row in runs.items():
        for fn, (reached, msg) in row["failures"]:
            r = f" after {reached:,} units" if reached is not None else ""
            shown = f"; shown at n={row['n']:,}" if row["n"] else ""
            notes.append(f"- {workload}, {impl}: failed at n={fn:,}{r}: `{msg}`{shown}")
    return "\n".join(out), "\n".join(notes)


SWEEP = [1_000, 10_000, 100_000, 1_000_000]


def sweep(quick, timeout):
    """`parked` at growing counts for every implementation, one process per
    point (the largest count that runs ends each line), drawn into
    target/parked-sweep.svg. Returns a markdown note with the figures."""
    import plot

    counts = SWEEP[:2] if quick else SWEEP
    points, failures, rows = {}, {}, []
    for impl in IMPLS:
        points[impl] = []
        for n in counts:
            if impl == "threads" and n > 10_000:
                failures[impl] = "not run above 10,000 (one OS thread per unit)"
                break
            print(f"sweep parked {impl} n={n:,}", file=sys.stderr, flush=True)
            res, err = one_process(impl, "parked", n, 1, timeout)
            if err is not None:
                reached, msg = err
                failures[impl] = f"fails at {n:,}" + (f" after {reached:,}" if reached else "") + f": {msg[:60]}"
                break
            v = res[0]
            points[impl].append((n, float(v["ns_per_op"]), float(v["rss_kib_per_unit"])))
            rows.append(f"| {impl} | {n:,} | {float(v['ns_per_op']) / 1000:.2f} µs | {float(v['rss_kib_per_unit']):.2f} KiB |")
    svg = os.path.join(HERE, "target", "parked-sweep.svg")
    os.makedirs(os.path.dirname(svg), exist_ok=True)
    plot.write_svg(svg, points, "parked units: creation time and RSS per unit", failures)
    lines = [f"Scaling (`parked` at each count, one process per point; plot: `bench/target/parked-sweep.svg`):", "",
             "| impl | units | creation per unit | RSS per unit |", "|---|--:|--:|--:|"] + rows
    if failures:
        lines += [""] + [f"- {impl}: {why}" for impl, why in failures.items()]
    return "\n".join(lines)


def main():
    quick = "--quick" in sys.argv[1:]
    unknown = [a for a in sys.argv[1:] if a != "--quick"]
    if unknown:
        sys.exit(f"driver.py: unknown arguments {unknown}; usage: run.sh [--quick]")
    t0 = time.time()
    busy0, steal0 = cpu_times()
    own0 = own_cpu()
    head = header(quick)
    plan = sizes(quick)
    runs = {}
    timeout = 120 if quick else 600
    # BENCH_ONLY=chan_pingpong,chan_mpmc runs a subset of the workloads.
    only = [w for w in os.environ.get("BENCH_ONLY", "").split(",") if w]
    for workload in ("yield", "spawn_join", "parked", "skynet", "mutex", "chan_pingpong", "chan_mpmc", "tcp_echo",
                     "blocking", "blocking_read"):
        if only and workload not in only:
            continue
        # Rounds interleave the implementations, so a slow spell of a shared
        # or virtual machine hits them all alike rather than one of them.
        for rnd in range(plan["rounds"]):
            for impl in IMPLS:
                n, reps = plan[workload][impl]
                row = runs.get((workload, impl))
                if row is not None:
                    if row["n"] is None:
                        continue
                    n = row["n"]
                print(f"running {workload} {impl} n={n:,} reps={reps} round {rnd + 1}/{plan['rounds']}",
                      file=sys.stderr, flush=True)
                if row is None:
                    runs[(workload, impl)] = measure(impl, workload, n, reps, timeout)
                    continue
                values, err = one_process(impl, workload, n, reps, timeout)
                row["values"] += values
                if err:
                    row["failures"].append((n, err))
    # The parked sweep belongs to `parked`: a BENCH_ONLY run without it
    # skips the sweep.
    sweep_note = sweep(quick, timeout) if not only or "parked" in only else ""
    tab, notes = table(runs, quick)
    if PREFAULT_NS:
        head += (f"\n- first touch just before each `parked` process, while `prefault` warms the "
                 f"kernel's free pages: median {statistics.median(PREFAULT_NS):,.0f} ns "
                 f"({min(PREFAULT_NS):,}–{max(PREFAULT_NS):,} ns over {len(PREFAULT_NS)} warm-ups)")
    print(head)
    print()
    print(tab)
    if notes:
        print()
        print("Failures:")
        print()
        print(notes)
    print()
    if sweep_note:
        print(sweep_note)
        print()
    cpus = os.cpu_count() or 1
    wall = time.time() - t0
    busy1, steal1 = cpu_times()
    others = max(busy1 - busy0 - (own_cpu() - own0), 0.0)
    steal = steal1 - steal0
    share = others / (wall * cpus) if wall > 0 else 0.0
    print(f"Run: {wall:.0f} s after the build; other processes used {others:.1f} CPU-s "
          f"({share:.0%} of the {cpus} CPUs), hypervisor steal {steal:.1f} s.")
    if share > 0.10 or steal > 0.05 * wall * cpus:
        print()
        print(f"**Warning: other work shared this machine during the run ({share:.0%} of its CPU time"
              f", steal {steal:.1f} s); the figures are noisier than usual.**")
    os.makedirs(os.path.join(HERE, "target"), exist_ok=True)
    with open(os.path.join(HERE, "target", "bench-results.txt"), "w") as f:
        f.write(head + "\n\n" + "\n".join(RAW) + "\n")


if __name__ == "__main__":
    main()
