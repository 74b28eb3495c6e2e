#!/usr/bin/env bash
# Packages every publishable crate as crates.io would receive it, then builds
# a new crate that depends on the packaged .crate files — not on the
# workspace's paths — and runs the README's program and a crash dump.
#
# Our crates are not on crates.io, so each package's verification build
# resolves the others through the temporary local registry that
# `cargo package --workspace` makes (cargo >= 1.90); the new crate unpacks
# the .crate files and points `[patch.crates-io]` at them. Third-party
# crates come from crates.io at the workspace's locked versions.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

version="$(cargo pkgid -p gort)"
version="${version##*@}"
crates=(gort-arch gort-scheduler gort-signals gort gort-capi)

# Cargo treats a registry crate of a given name and version as immutable:
# it unpacks it once and never rebuilds it for changed sources. That holds
# for the temporary local registry of the verification builds too (its
# unpacked copies sit in a source directory whose name starts with "-"), so
# a second run would verify the first run's sources. Drop those copies of
# our crates, and verify in a target directory of its own, made afresh.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
for c in "${crates[@]}"; do
  rm -rf "$cargo_home"/registry/src/-*/"$c-$version" "$cargo_home"/registry/cache/-*/"$c-$version.crate"
done
verify="$root/target/package-verify"
rm -rf "$verify"

# publish = false: tests (the integration package) and gort-testkit (test
# support, a dev-dependency cargo drops from the published manifests).
# Everything else ships.
echo "== cargo package (every publishable crate, each verified by building it from its .crate)"
cargo package --workspace --exclude tests --exclude gort-testkit --locked --allow-dirty --target-dir "$verify"

check="$root/target/package-check"
rm -rf "$check"
mkdir -p "$check/crates" "$check/src/bin"
patch=""
for c in "${crates[@]}"; do
  tar -xzf "$verify/package/$c-$version.crate" -C "$check/crates"
  patch+="$c = { path = \"crates/$c-$version\" }"$'\n'
done

cat >"$check/Cargo.toml" <<EOF
[package]
name = "gort-package-check"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
gort = "$version"
gort-capi = "$version"

[patch.crates-io]
$patch
[profile.release]
debug = 1
EOF

# The README's first Rust program, exactly as a reader would paste it.
awk '/^```rust$/ { on = 1; next } on && /^```$/ { exit } on { print }' README.md >"$check/src/main.rs"
grep -q 'fn main' "$check/src/main.rs" || {
  echo "package.sh: README's first rust block has no main" >&2
  exit 1
}

cat >"$check/src/bin/crash.rs" <<'EOF'
//! A G reads a null pointer: gort's crash dump names the G and the function.
fn main() {
    runtime::GoBuilder::new()
        .name("will-crash")
        .spawn(read_null)
        .unwrap()
        .join()
        .ok();
}

#[inline(never)]
fn read_null() -> u8 {
    let p = std::hint::black_box(std::ptr::null::<u8>());
    // SAFETY: none: the fault is the point.
    unsafe { std::ptr::read_volatile(p) }
}
EOF

cat >"$check/src/bin/capi.rs" <<'EOF'
//! gort-capi's C ABI from its packaged crate: a G spawned and joined.
use std::ffi::{c_int, c_void};

unsafe extern "C" fn square(arg: *mut c_void) -> c_int {
    let n = arg as usize as c_int;
    n * n
}

fn main() {
    let mut r = 0;
    // SAFETY: `square` takes any pointer-sized integer; `r` is writable.
    let (h, st) = unsafe {
        let h = gort::gort_spawn(Some(square), 7 as *mut c_void);
        (h, gort::gort_join(h, &mut r))
    };
    assert!(h > 0 && st == 0 && r == 49, "h={h} st={st} r={r}");
    // SAFETY: as above.
    assert_eq!(unsafe { gort::gort_join(h, &mut r) }, -11);
    println!("joined={r}");
}
EOF

# Pin third-party crates to the workspace's versions; cargo adds ours.
cp Cargo.lock "$check/Cargo.lock"
cd "$check"
echo "== a new crate depending on gort $version from the packaged .crate files"
cargo build --release --bins
grep -q 'source = "registry' Cargo.lock
if grep -A2 '^name = "gort' Cargo.lock | grep -q '^source'; then
  echo "package.sh: a gort crate came from a registry, not the packaged files" >&2
  exit 1
fi

echo "== the README's program"
sum="$(target/release/gort-package-check)"
[ "$sum" = 49995000 ] || {
  echo "package.sh: README program printed '$sum', want 49995000" >&2
  exit 1
}
echo "printed $sum"

echo "== gort-capi's C ABI"
[ "$(target/release/capi)" = joined=49 ]
echo "joined=49"

echo "== a crash dump from a G"
set +e
GORT_TRACEBACK=all timeout -s KILL 60 target/release/crash 2>dump.txt
rc=$?
set -e
head -n 12 dump.txt
# Exit status 2 after the dump, as Go's runtime does for a fatal signal.
[ "$rc" -eq 2 ] || {
  echo "package.sh: crash exited with $rc, want 2" >&2
  exit 1
}
# The faulting G's header, its name, the function and the spawn site (the
# dump's grammar is docs/crash-format.md's; these are what it must name).
for want in 'SIGSEGV' 'goroutine 1 \[running' 'will-crash' 'crash::read_null' 'src/bin/crash.rs:5'; do
  grep -q -- "$want" dump.txt || {
    echo "package.sh: the dump lacks '$want'" >&2
    exit 1
  }
done
echo "== packaging: all checks passed"
