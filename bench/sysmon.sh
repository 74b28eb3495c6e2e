#!/usr/bin/env bash
# sysmon's own CPU time while the Ps are busy (bench/src/bin/sysmon_cpu.rs):
# 2 Ps, CPU-bound Gs for a number of seconds, three shapes (nothing queued;
# two more spinners queued; four Gs yielding every ~50 µs). Prints a markdown
# table. Usage: bench/sysmon.sh [seconds per shape, default 10]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-10}"
cargo build --release --quiet --locked --bin sysmon_cpu 2>/dev/null ||
    cargo build --release --quiet --bin sysmon_cpu
for mode in spin spin_queued yield_queued; do
    target/release/sysmon_cpu "$secs" "$mode"
done | python3 -c '
import re, sys
what = {"spin": "2 spinning Gs, nothing queued",
        "spin_queued": "4 spinning Gs (2 queued until a slice ends)",
        "yield_queued": "4 Gs yielding every ~50 µs (2 always queued)"}
print("| shape (2 Ps) | seconds | sysmon CPU | per second | share of one CPU | sysmon wake-ups | last G started after |")
print("|---|--:|--:|--:|--:|--:|--:|")
for line in sys.stdin:
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if not line.startswith("sysmon ") or "mode" not in kv:
        continue
    print("| %s | %s | %.1f ms | %.0f µs | %s | %s | %.1f ms |" % (what[kv["mode"]], kv["secs"],
          int(kv["cpu_us"]) / 1e3, float(kv["cpu_per_s_us"]), kv["share_of_one_cpu"], kv["wakeups"],
          int(kv["last_start_us"]) / 1e3))
'
