#!/usr/bin/env bash
# Builds gort's C library and installs it for C programs:
#
#   $libdir/libgort.a                  static library
#   $libdir/libgort.so.X.Y.Z           shared library (soname libgort.so.0.Y
#   $libdir/libgort.so.0.Y, libgort.so   while the major version is 0)
#   $includedir/gort.h
#   $libdir/pkgconfig/gort.pc          pkg-config: Cflags, Libs, Libs.private
#
# Usage: capi/install.sh [--prefix DIR] [--libdir DIR] [--includedir DIR]
#                        [--destdir DIR] [--library-type both|staticlib|cdylib]
#                        [--locked]
#
#   --prefix        default /usr/local
#   --libdir        default PREFIX/lib; --includedir default PREFIX/include
#   --destdir       staging root for packagers (files land in DESTDIR/PREFIX,
#                   gort.pc still names PREFIX)
#   --library-type  which libraries to install (default both). With both,
#                   the linker picks the shared one for -lgort; to link
#                   statically, install staticlib alone and use
#                   `pkg-config --static --libs gort` (cargo-c's convention).
#   --locked        build with the workspace's Cargo.lock (CI does)
#
# Then: cc app.c $(pkg-config --cflags --libs gort)   (PKG_CONFIG_PATH must
# include LIBDIR/pkgconfig if that is not a system directory; run ldconfig
# after installing the shared library under a system prefix).
#
# The layout and the .pc file follow cargo-c's (`cargo cinstall`). gort does
# not use cargo-c itself: the release that builds with gort's toolchain
# (0.10.24; newer ones need rustc 1.97) compiles cargo as a library, 348
# crates, ~770 s of CPU time and 2 GB of memory, which would cost CI far more
# than this script (the package's README has the measurement).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
prefix=/usr/local
libdir=
includedir=
destdir=
libtype=both
locked=()

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --libdir) libdir="$2"; shift 2 ;;
    --libdir=*) libdir="${1#*=}"; shift ;;
    --includedir) includedir="$2"; shift 2 ;;
    --includedir=*) includedir="${1#*=}"; shift ;;
    --destdir) destdir="$2"; shift 2 ;;
    --destdir=*) destdir="${1#*=}"; shift ;;
    --library-type) libtype="$2"; shift 2 ;;
    --library-type=*) libtype="${1#*=}"; shift ;;
    --locked) locked=(--locked); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$libtype" in
  both | staticlib | cdylib) ;;
  *) echo "install.sh: --library-type must be both, staticlib or cdylib, not '$libtype'" >&2; exit 2 ;;
esac
case "$prefix" in
  /*) ;;
  *) echo "install.sh: --prefix must be an absolute path, not '$prefix'" >&2; exit 2 ;;
esac
[ -n "$libdir" ] || libdir="$prefix/lib"
[ -n "$includedir" ] || includedir="$prefix/include"

manifest="$here/Cargo.toml"
version="$(cargo pkgid --manifest-path "$manifest" -p gort-capi)"
version="${version##*@}"
version="${version##*#}"
major="${version%%.*}"
rest="${version#*.}"
minor="${rest%%.*}"
if [ "$major" = 0 ]; then soname="libgort.so.0.$minor"; else soname="libgort.so.$major"; fi

target_dir="$(cargo metadata --manifest-path "$manifest" --format-version 1 --no-deps |
  grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)"
out="$target_dir/release"
native="$out/gort-native-static-libs.txt"

# One build makes libgort.a and libgort.so and writes the system libraries
# the static one needs (rustc's native-static-libs) for gort.pc.
echo "== building gort-capi $version (release)" >&2
cargo rustc --release "${locked[@]}" --manifest-path "$manifest" -p gort-capi --lib -- \
  --print "native-static-libs=$native" >&2
[ -s "$native" ] || {
  echo "install.sh: rustc did not write $native; run 'cargo clean -p gort-capi --release' and retry" >&2
  exit 1
}

dest_lib="$destdir$libdir"
dest_inc="$destdir$includedir"
install -d "$dest_lib/pkgconfig" "$dest_inc"
install -m 644 "$here/include/gort.h" "$dest_inc/gort.h"
if [ "$libtype" != cdylib ]; then
  install -m 644 "$out/libgort.a" "$dest_lib/libgort.a"
fi
if [ "$libtype" != staticlib ]; then
  install -m 755 "$out/libgort.so" "$dest_lib/libgort.so.$version"
  ln -sfn "libgort.so.$version" "$dest_lib/$soname"
  ln -sfn "$soname" "$dest_lib/libgort.so"
fi

# Paths under the prefix are written relative to it, so a relocated tree
# works with pkg-config --define-prefix.
rel() {
  case "$1" in
    "$prefix"/*) echo "\${prefix}/${1#"$prefix"/}" ;;
    *) echo "$1" ;;
  esac
}
cat >"$dest_lib/pkgconfig/gort.pc" <<EOF
prefix=$prefix
libdir=$(rel "$libdir")
includedir=$(rel "$includedir")

Name: gort
Description: Go-style green threads with crash tracing: the gort runtime's C library
URL: https://github.com/gort-rs/gort
Version: $version
Libs: -L\${libdir} -lgort
Libs.private: $(tr -d '\n' <"$native")
Cflags: -I\${includedir}
EOF
echo "installed gort $version ($libtype) under $destdir$prefix: gort.h, $(
  [ "$libtype" != cdylib ] && printf 'libgort.a '
  [ "$libtype" != staticlib ] && printf '%s ' "$soname"
)gort.pc" >&2
