#!/usr/bin/env bash
# Crash latency: from a fatal signal to the end of the process in crash mode
# (GORT_TRACEBACK=crash against Go's GOTRACEBACK=crash), the dump written to
# a file. The parent (crash_bench measure) starts each child, reads the
# CLOCK_MONOTONIC time the child printed just before raising SIGSEGV, and
# stops the clock when waitpid returns. Median of several runs; gort and Go
# alternate within one run of this script.
#
#   bench/crash.sh          8 Ms, 100 extra Ms, 10,000 Gs; 7 runs each
#   bench/crash.sh --quick  tiny sizes, one run: a smoke test
#
# Figures and how to read them: docs/benchmarks.md, "Crash latency".
set -euo pipefail
cd "$(dirname "$0")"

runs=7 busy=8 extra=100 parked=10000
for a in "$@"; do
    case "$a" in
        --quick) runs=1 busy=2 extra=4 parked=100 ;;
        *) echo "usage: bench/crash.sh [--quick]" >&2; exit 2 ;;
    esac
done

# shellcheck source=need-go.sh
. ./need-go.sh crash.sh

cargo build --release --locked --bin crash_bench >&2 || cargo build --release --bin crash_bench >&2
mkdir -p target
# cgo (the C threads that call in) needs a C compiler; no module downloads.
(cd go-crash && GOPROXY=off GOFLAGS=-mod=mod CGO_ENABLED=1 go build -o ../target/go_crash .) >&2

m=./target/release/crash_bench
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Alternate the two so that a burst of load elsewhere hits both.
for _ in $(seq "$runs"); do
    GORT_TRACEBACK=crash GORT_MAXPROCS=$busy \
        $m measure 1 gort target/crash-gort.err -- $m child "$busy" "$extra" "$parked" >>"$out"
    GOTRACEBACK=crash GOMAXPROCS=$busy \
        $m measure 1 go target/crash-go.err -- ./target/go_crash "$busy" "$extra" "$parked" >>"$out"
done
grep '^error' "$out" >&2 || true

echo "crash latency: $busy busy Ms, $extra extra Ms, $parked parked Gs, $runs runs, dump to a file"
echo
echo "| runtime | median ms | min ms | max ms | dump bytes |"
echo "|---|---:|---:|---:|---:|"
for impl in gort go; do
    err=target/crash-$impl.err
    bytes=$(stat -c %s "$err" 2>/dev/null || echo 0)
    grep "^result workload=crash_latency impl=$impl " "$out" |
        sed 's/.* ms=//' | sort -g |
        awk -v impl="$impl" -v bytes="$bytes" '
            { v[NR] = $1 }
            END {
                if (NR == 0) { printf "| %s | failed | | | |\n", impl; exit }
                printf "| %s | %.1f | %.1f | %.1f | %d |\n", impl, v[int((NR + 1) / 2)], v[1], v[NR], bytes
            }'
done
