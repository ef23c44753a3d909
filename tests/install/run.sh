#!/usr/bin/env bash
# Install test: installs a troupe build into a temporary prefix, then builds
# and runs a small consumer against it twice, once through the CMake package
# (find_package(troupe)) and once through pkg-config (troupe.pc).
#
# usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR [CONFIG]
# env:   CMAKE_COMMAND (default: cmake), CC (default: cc)
set -euo pipefail

build_dir=${1:?usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR [CONFIG]}
src_dir=${2:?usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR [CONFIG]}
config=${3:-}
cmake=${CMAKE_COMMAND:-cmake}
cc=${CC:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

step() { printf '\n-- %s\n' "$*"; }

step "install $build_dir into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" ${config:+--config "$config"}

step "consumer via find_package(troupe)"
"$cmake" -S "$src_dir" -B "$tmp/consumer" \
	-DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_BUILD_TYPE=Release
found=$(sed -n 's/^troupe_DIR:PATH=//p' "$tmp/consumer/CMakeCache.txt")
case $found in
"$prefix"/*) echo "troupe_DIR = $found" ;;
*) echo "error: find_package(troupe) found '$found', not the test prefix" >&2; exit 1 ;;
esac
"$cmake" --build "$tmp/consumer"
"$tmp/consumer/consumer"
"$tmp/consumer/consumer_static"
if [ -e "$prefix"/*/cmake/troupe/troupe-node-targets.cmake ] ||
	[ -n "$(find "$prefix" -name troupe-node-targets.cmake -print -quit)" ]; then
	[ -x "$tmp/consumer/consumer_node" ] ||
		{ echo "error: troupe::node is installed but was not found" >&2; exit 1; }
	"$tmp/consumer/consumer_node"
fi

step "consumer via pkg-config"
pc=$(find "$prefix" -name troupe.pc -print -quit)
[ -n "$pc" ] || { echo "error: troupe.pc was not installed" >&2; exit 1; }
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
pkg-config --print-errors --exists troupe
libdir=$(pkg-config --variable=libdir troupe)
case $libdir in
"$prefix"/*) ;;
*) echo "error: troupe.pc has libdir '$libdir', not under the test prefix" >&2; exit 1 ;;
esac
# shellcheck disable=SC2046 # word splitting of pkg-config's output is wanted
"$cc" -std=c11 -Wall -Wextra -Werror "$src_dir/main.c" -o "$tmp/consumer_pc" \
	$(pkg-config --cflags --libs troupe)
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
loaded=$(ldd "$tmp/consumer_pc" | awk '$1 ~ /^libtroupe\.so/ { print $3 }')
case $loaded in
"$prefix"/*) echo "libtroupe = $loaded" ;;
*) echo "error: the consumer loads libtroupe from '$loaded', not the test prefix" >&2; exit 1 ;;
esac
"$tmp/consumer_pc"

step "install test passed"
