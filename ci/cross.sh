#!/usr/bin/env bash
# Cross-arch tests: the workspace's tests for aarch64 and i686, run under
# qemu-user on an x86_64 Debian machine.
#
# The rustup toolchain has only the host target, so this uses Debian's
# rustc-web (rustc, rustdoc and cargo in /usr/bin, named explicitly because
# rustup's shims come first on PATH) and rebuilds std for each target with
# -Zbuild-std (hence RUSTC_BOOTSTRAP=1). Linkers and qemu runners come from
# .cargo/config.toml. Builds go to target-cross/ so the host cache survives.
# A cold run rebuilds std per target (about 50 s each); a warm one only what
# changed. docs/cross-arch.md explains each step and lists what qemu-user
# cannot do.
#
# Missing packages are installed on the first run (apt-get, as root or through
# sudo); later runs only check them with dpkg. We never
# `dpkg --add-architecture i386`: the i386 index on the mirror breaks
# `apt-get update`, and -Zbuild-std makes the foreign libstd unnecessary.
#
# Environment:
#   GORT_CROSS_PACKAGES  cargo package selection instead of --workspace,
#                        e.g. "-p gort-arch" or "-p gort-arch -p gort-scheduler".
#   GORT_CROSS_TARGETS   targets to run instead of both, space separated.
#   GORT_CROSS_PRUNE=1   removes each target's build directory once its tests
#                        passed (.ci/run sets it: CI machines have small disks).
#   GORT_UNDER_QEMU=1    is SET BY THIS SCRIPT for the test processes. A test
#                        that cannot work under qemu-user (for example one
#                        that relies on MADV_GUARD_INSTALL, a silent no-op in
#                        qemu 7.2) must check it, print why it is skipped and
#                        return; the script never filters tests itself.
#   Arguments of this script are appended to `cargo test`, e.g.
#   `ci/cross.sh --test conformance -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a targets <<<"${GORT_CROSS_TARGETS:-aarch64-unknown-linux-gnu i686-unknown-linux-gnu}"
if [ -n "${GORT_CROSS_PACKAGES:-}" ]; then
  read -r -a selection <<<"$GORT_CROSS_PACKAGES"
else
  selection=(--workspace)
fi

packages=(
  rustc-web cargo-web rust-web-src
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-i686-linux-gnu libc6-dev-i386-cross
  qemu-user
  panicparse
)

# Install whatever is missing; on a second run this is a few dpkg-query calls.
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "cross.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
for tool in /usr/bin/rustc /usr/bin/rustdoc /usr/bin/cargo \
  aarch64-linux-gnu-gcc i686-linux-gnu-gcc qemu-aarch64 qemu-i386; do
  command -v "$tool" >/dev/null || { echo "cross.sh: $tool missing after install" >&2; exit 1; }
done

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export GORT_UNDER_QEMU=1
# The tests see the debug info a user's `cargo build` gives (dumps read it);
# no incremental cache, since each target is built once per run.
export CARGO_INCREMENTAL=0
echo "== $(/usr/bin/rustc --version), $(qemu-aarch64 --version | head -n 1)"

for t in "${targets[@]}"; do
  # Tests that start child processes (scenarios) run them through the same
  # qemu runner: the kernel has no binfmt entry for foreign binaries here.
  case "$t" in
    aarch64-*) export GORT_QEMU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib" ;;
    i686-*) export GORT_QEMU_RUNNER="qemu-i386 -L /usr/i686-linux-gnu" ;;
  esac
  echo "== cargo test --target $t (${selection[*]}) under qemu-user"
  /usr/bin/cargo test --target "$t" -Zbuild-std --target-dir target-cross \
    --locked "${selection[@]}" "$@"
  if [ "${GORT_CROSS_PRUNE:-0}" = 1 ]; then
    echo "== $t passed; removing target-cross/$t ($(du -sh "target-cross/$t" | cut -f1))"
    rm -rf "target-cross/$t"
  fi
done
echo "== cross: all targets passed"
