#!/usr/bin/env bash
# Builds and runs gort's scheduler benchmarks against may, tokio, Go and OS
# threads, and prints a markdown table (docs/benchmarks.md says how to read
# it).
#
#   bench/run.sh            full sizes, several repetitions (a few minutes)
#   bench/run.sh --quick    tiny sizes, one repetition: a smoke test for CI
#   BENCH_ONLY=blocking,blocking_read bench/run.sh
#                           only these workloads (names as in the table;
#                           `ffi`, `sysmon` and `crash` name the harnesses
#                           after the table)
#
# Build output goes to stderr; the table goes to stdout.
set -euo pipefail
cd "$(dirname "$0")"

for a in "$@"; do
    case "$a" in
        --quick) ;;
        *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
    esac
done

# shellcheck source=need-go.sh
. ./need-go.sh run.sh

start=$(date +%s)
# Only the binaries of this harness (the directory holds other benchmarks).
bins=(--bin gort_bench --bin may_bench --bin tokio_bench --bin threads_bench --bin calibrate --bin sysmon_cpu)
cargo build --release --locked "${bins[@]}" >&2 || cargo build --release "${bins[@]}" >&2
mkdir -p target
# The Go program has no dependencies: never reach for the module proxy.
(cd go && GOPROXY=off GOFLAGS=-mod=mod go build -o ../target/go_bench .) >&2
echo "run.sh: build took $(( $(date +%s) - start )) s" >&2

python3 driver.py "$@"

# Workload 8: a foreign C thread calling into the runtime, gort against
# Go's cgo (its own harness: C code, a cgo program).
quick=0
for a in "$@"; do [ "$a" = --quick ] && quick=1; done
# Whether BENCH_ONLY (comma-separated) asks for harness $1; empty: all.
wanted() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
if wanted ffi; then
    echo
    echo "Foreign C thread → runtime callback, and C calls (bench/ffi.sh):"
    echo
    if [ "$quick" = 1 ]; then ./ffi.sh 1; else ./ffi.sh 5; fi
fi

# sysmon's own CPU time while 2 Ps run busy Gs (gort only).
if wanted sysmon; then
    echo
    echo "sysmon's CPU time while both Ps are busy (bench/sysmon.sh):"
    echo
    if [ "$quick" = 1 ]; then ./sysmon.sh 0.5; else ./sysmon.sh 10; fi
fi

# Workload 9: crash-dump latency, GORT_TRACEBACK=crash against Go's
# GOTRACEBACK=crash (its own harness: a parent timing child processes).
if wanted crash; then
    echo
    echo "Crash dump latency (bench/crash.sh):"
    echo
    if [ "$quick" = 1 ]; then ./crash.sh --quick; else ./crash.sh; fi
fi
