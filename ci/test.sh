#!/usr/bin/env bash
# gort's test command (the one the README gives): unit, integration and
# scenario tests in debug and release, then the million-G check in release.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (debug)"
cargo test --workspace --locked
echo "== cargo test (release)"
cargo test --workspace --locked --release
echo "== the scheduler with plain fences instead of membarrier (GORT_MEMBARRIER=0)"
GORT_MEMBARRIER=0 cargo test --locked --release -p scheduler --lib
GORT_MEMBARRIER=0 cargo test --locked --release -p tests --test sched_spawn --test sched_scenarios \
  --test sched_sysmon --test chan_basic --test sync_mutex
echo "== 1,000,000 parked Gs under the default vm.max_map_count (release)"
echo "   vm.max_map_count=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo '?')"
cargo run --release --locked --example tour -- 1000000 --check

echo "== the C example, linked against the runtime's static library"
cargo build --release --locked -p runtime
out=target/c-example
mkdir -p "$out"
cc -std=c11 -Wall -Wextra -O2 -DGORT_EXAMPLE_MAIN -Iruntime/include tests/c/example.c \
  target/release/libruntime.a -lpthread -ldl -lm -o "$out/example"
"$out/example"
