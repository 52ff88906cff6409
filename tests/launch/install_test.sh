#!/usr/bin/env bash
# The installed lockstep, as a site would use it:
#   install_test.sh BUILD_DIR WORK_DIR SOURCE_DIR
# installs BUILD_DIR into WORK_DIR/prefix, checks the layout and that
# `lockstep --version` names the source's git commit, builds
# install_consumer/ against it with find_package(lockstep) and with
# pkg-config, runs both, and loads the Lmod modulefile.
set -euo pipefail
build=$(realpath "$1")
work=$2
source_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")
prefix="$work/prefix"
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" > "$work/install.log"

# Layout.
[[ -x "$prefix/bin/lockstep" ]] || fail "no $prefix/bin/lockstep"
config=$(find "$prefix" -name lockstep-config.cmake)
[[ -n "$config" ]] || fail "no lockstep-config.cmake under $prefix"
libdir=$(dirname "$(dirname "$(dirname "$config")")")
for component in base kernels transport partitioner tokenizer model formats convert engine job; do
  ls "$libdir"/liblockstep_"$component".* > /dev/null 2>&1 || fail "no liblockstep_$component in $libdir"
  [[ -d "$prefix/include/lockstep/$component" ]] || fail "no include/lockstep/$component"
done
[[ -f "$libdir/pkgconfig/lockstep.pc" ]] || fail "no $libdir/pkgconfig/lockstep.pc"
grep -q "^prefix=$prefix\$" "$libdir/pkgconfig/lockstep.pc" || fail "lockstep.pc does not name prefix $prefix"
# Only public headers: every installed header is a lockstep/<component>/ one.
stray=$(find "$prefix/include" -type f ! -path "$prefix/include/lockstep/*/*.h")
[[ -z "$stray" ]] || fail "unexpected files under include/: $stray"

# The command: version with the git revision, and it runs from the prefix.
version=$("$prefix/bin/lockstep" --version)
[[ "$version" =~ ^lockstep\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ [^\)]+\)$ ]] || fail "--version printed '$version'"
if [[ -e "$source_dir/.git" ]]; then
  # The build's commit (refreshed at every build, not only at configure).
  commit=$(git -C "$source_dir" rev-parse HEAD | cut -c1-12)
  [[ "$version" == *"$commit"* ]] || fail "--version '$version' does not name commit $commit (rebuild?)"
fi

# find_package(lockstep).
cmake -S "$here/install_consumer" -B "$work/cmake-build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" > "$work/consumer-configure.log" 2>&1 ||
  { cat "$work/consumer-configure.log"; fail "find_package(lockstep) project does not configure"; }
cmake --build "$work/cmake-build" > "$work/consumer-build.log" 2>&1 ||
  { cat "$work/consumer-build.log"; fail "find_package(lockstep) project does not build"; }
out=$("$work/cmake-build/lockstep_consumer" "$work/cmake.h5")
echo "find_package: $out"
[[ "$out" == "consumer ok: "* ]] || fail "find_package consumer printed '$out'"

# pkg-config lockstep.
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc_version=$(pkg-config --modversion lockstep)
[[ "$version" == "lockstep $pc_version "* ]] || fail "pkg-config version $pc_version differs from '$version'"
# shellcheck disable=SC2046
c++ -std=c++20 -O1 "$here/install_consumer/consumer.cc" -o "$work/pc_consumer" \
  $(pkg-config --cflags --libs lockstep) || fail "pkg-config consumer does not build"
out=$("$work/pc_consumer" "$work/pc.h5")
echo "pkg-config: $out"
[[ "$out" == "consumer ok: "* ]] || fail "pkg-config consumer printed '$out'"

# The Lmod modulefile puts the prefix on PATH and CMAKE_PREFIX_PATH.
modulefiles=$(dirname "$(dirname "$(find "$prefix" -path '*modulefiles/lockstep/*.lua')")")
[[ -d "$modulefiles" ]] || fail "no modulefile installed"
# shellcheck disable=SC1091
source /usr/share/lmod/lmod/init/bash
set +u
module use "$modulefiles"
module load lockstep
set -u
[[ $(command -v lockstep) == "$prefix/bin/lockstep" ]] || fail "module load lockstep: lockstep is $(command -v lockstep)"
[[ ":$CMAKE_PREFIX_PATH:" == *":$prefix:"* ]] || fail "module load lockstep: CMAKE_PREFIX_PATH=$CMAKE_PREFIX_PATH"
[[ "$LOCKSTEP_ROOT" == "$prefix" ]] || fail "module load lockstep: LOCKSTEP_ROOT=$LOCKSTEP_ROOT"
echo "module: $(lockstep --version)"
rm -rf "$work"
echo "install_test: ok"
