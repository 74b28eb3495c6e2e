#!/usr/bin/env bash
# Foreign-thread callbacks and C calls: gort (bench/src/bin/ffi_bench.rs)
# against Go's cgo (bench/cgo) in one run. Prints a markdown table of
# medians. Usage: bench/ffi.sh [repetitions]
set -euo pipefail
cd "$(dirname "$0")"
reps="${1:-5}"
# shellcheck source=need-go.sh
. ./need-go.sh ffi.sh
cargo build --release --quiet --bin ffi_bench
(cd cgo && GOFLAGS=-mod=mod go build -o ../target/gocgo .)
{ target/release/ffi_bench "$reps"; target/gocgo "$reps"; } | python3 -c '
import sys, statistics, collections
r = collections.defaultdict(list)
for line in sys.stdin:
    if line.startswith("result"):
        kv = dict(p.split("=") for p in line.split()[1:])
        r[(kv["workload"], kv["impl"])].append(float(kv["ns_per_op"]))
    elif line.startswith("info"):
        print("<!--", line.strip(), "-->")
names = {"callback": "C thread -> callback (bound M)", "first_callback": "first callback on a new C thread", "c_call": "empty C call from a G / goroutine"}
print("| workload | gort median (min-max) | Go cgo median (min-max) | Go / gort |")
print("|---|---|---|---|")
for w in ["callback", "first_callback", "c_call"]:
    g, o = r[(w, "gort")], r[(w, "go-cgo")]
    f = lambda v: "%.0f ns (%.0f-%.0f)" % (statistics.median(v), min(v), max(v)) if v else "-"
    ratio = "%.1fx" % (statistics.median(o) / statistics.median(g)) if g and o else "-"
    print("| %s | %s | %s | %s |" % (names[w], f(g), f(o), ratio))
'
