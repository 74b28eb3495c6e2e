#!/usr/bin/env bash
# gort's test command (the one the README gives): unit, integration and
# scenario tests in debug and release, the loom models of the scheduler's
# hand-shakes, the million-G check in release, the C
# example linked through pkg-config against libgort.a and libgort.so, and
# the packaging check (ci/package.sh). Needs a C compiler, pkg-config and
# readelf (ci/need-c-tools.sh installs them), crates.io, and ~4.3 GB of
# free memory for the million Gs.
set -euo pipefail
cd "$(dirname "$0")/.."

# tests/tests/crash_goparse.rs feeds dumps to Go's traceback parser.
if ! command -v panicparse >/dev/null 2>&1; then
    echo "== installing Debian's panicparse (Go's traceback parser, for crash_goparse)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y panicparse
fi

echo "== cargo test (debug)"
cargo test --workspace --locked
echo "== cargo test (release)"
cargo test --workspace --locked --release
echo "== the scheduler with plain fences instead of membarrier (GORT_MEMBARRIER=0)"
GORT_MEMBARRIER=0 cargo test --locked --release -p gort-scheduler --lib
GORT_MEMBARRIER=0 cargo test --locked --release -p tests --test sched_spawn --test sched_scenarios \
  --test sched_sysmon --test chan_basic --test sync_mutex
echo "== the scheduler's hand-shakes model-checked with loom (runnext, lent P, syscall P)"
# Its own target directory (about 130 MB): --cfg loom rebuilds every
# dependency. Three preemptions per execution: a few seconds; unbounded
# (LOOM_MAX_PREEMPTIONS unset) takes about a minute and a half.
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --locked --release -p gort-scheduler \
  --lib --target-dir target/loom loom_
# On a small CI disk (.ci/run sets GORT_CROSS_PRUNE=1) no later stage needs it.
if [ "${GORT_CROSS_PRUNE:-0}" = 1 ]; then rm -rf target/loom; fi
echo "== 1,000,000 parked Gs under the default vm.max_map_count (release)"
echo "   vm.max_map_count=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo '?')"
cargo run --release --locked --example tour -- 1000000 --check

echo "== examples/httpd --selftest: a listener handed in as a descriptor, a child"
echo "   process, an async client through block_on, a live dump on SIGUSR1, Ctrl-C"
cargo build --release --locked -p gort --example httpd
timeout 300 target/release/examples/httpd --selftest

echo "== the C example through pkg-config, against libgort.a and libgort.so"
ci/need-c-tools.sh
out="$PWD/target/c-example"
rm -rf "$out"
capi/install.sh --locked --prefix "$out/static" --library-type staticlib
capi/install.sh --locked --prefix "$out/shared" --library-type cdylib
for lib in static shared; do
  PKG_CONFIG_PATH="$out/$lib/lib/pkgconfig" pkg-config --validate gort
  [ "$(PKG_CONFIG_PATH="$out/$lib/lib/pkgconfig" pkg-config --modversion gort)" = "$(cargo pkgid -p gort-capi | sed 's/.*@//')" ]
done
cflags=(-std=c11 -Wall -Wextra -Werror -O2 -DGORT_EXAMPLE_MAIN)
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
cc "${cflags[@]}" tests/c/example.c \
  $(PKG_CONFIG_PATH="$out/static/lib/pkgconfig" pkg-config --static --cflags --libs gort) -o "$out/example-static"
# shellcheck disable=SC2046
cc "${cflags[@]}" tests/c/example.c \
  $(PKG_CONFIG_PATH="$out/shared/lib/pkgconfig" pkg-config --cflags --libs gort) -o "$out/example-shared"
if readelf -d "$out/example-static" | grep -q 'NEEDED.*libgort'; then
  echo "example-static needs libgort.so: it was not linked statically" >&2
  exit 1
fi
readelf -d "$out/example-shared" | grep -q 'NEEDED.*\[libgort\.so\.' || {
  echo "example-shared does not need libgort.so" >&2
  exit 1
}
"$out/example-static"
LD_LIBRARY_PATH="$out/shared/lib" "$out/example-shared"
# gort-capi's README program, as pasted.
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on { print }' capi/README.md >"$out/readme.c"
# shellcheck disable=SC2046
cc "${cflags[@]}" "$out/readme.c" \
  $(PKG_CONFIG_PATH="$out/shared/lib/pkgconfig" pkg-config --cflags --libs gort) -o "$out/readme"
[ "$(LD_LIBRARY_PATH="$out/shared/lib" "$out/readme")" = "ok: 49" ]

echo "== packaging: every publishable crate, and a new crate built from the .crate files"
ci/package.sh
