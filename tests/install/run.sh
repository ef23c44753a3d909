#!/usr/bin/env bash
# Install test: installs a troupe build into a temporary prefix, then builds
# and runs a small consumer against it twice, once through the CMake package
# (find_package(troupe)) and once through pkg-config (troupe.pc). When the
# node layer is installed, a node consumer too, the same ways
# (troupe::troupe with troupe::node, troupe::node_static, troupe-node.pc
# shared and static) and a protobuf payload consumer whose .proto imports
# the installed troupe/pid.proto; the shared ones must load libtroupe.so and
# libtroupe-node.so from the prefix, one runtime between them.
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

# $1 loads libtroupe.so and libtroupe-node.so, both from the test prefix
# (LD_LIBRARY_PATH or the build's RPATH), and no copy of either else.
check_shared_node() {
	local deps rt node
	deps=$(ldd "$1")
	rt=$(awk '$1 ~ /^libtroupe\.so/ { print $3 }' <<<"$deps")
	node=$(awk '$1 ~ /^libtroupe-node\.so/ { print $3 }' <<<"$deps")
	case $rt in
	"$prefix"/*) ;;
	*) echo "error: $1 loads libtroupe from '$rt', not the test prefix" >&2; exit 1 ;;
	esac
	case $node in
	"$prefix"/*) ;;
	*) echo "error: $1 loads libtroupe-node from '$node', not the test prefix" >&2; exit 1 ;;
	esac
	echo "$(basename "$1"): libtroupe = $rt, libtroupe-node = $node"
}

# A static node consumer carries its runtime: it loads neither library.
check_static_node() {
	if ldd "$1" | grep -c 'libtroupe' >/dev/null; then
		echo "error: $1 is static but loads a troupe library:" >&2
		ldd "$1" >&2
		exit 1
	fi
}

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
	have_node=1
	[ -x "$tmp/consumer/consumer_node" ] && [ -x "$tmp/consumer/consumer_node_static" ] ||
		{ echo "error: troupe::node is installed but was not found" >&2; exit 1; }
	# The node library must not carry a runtime of its own: it exports its
	# API (node.h, dns.h, global.h, pg.h, proc.h, heart.h, observer.h, pid.h, pb.h, sock.h
	# and the generated code of troupe/pid.proto) and takes the runtime's,
	# distribution interface included, from libtroupe.so.
	node_so=$(find "$prefix" -name 'libtroupe-node.so.*.*' -print -quit)
	[ -n "$node_so" ] || { echo "error: libtroupe-node.so was not installed" >&2; exit 1; }
	extra=$(nm -D --defined-only "$node_so" | awk '{ print $3 }' |
		grep -v -E '^tr_(node_|send_remote_named$|spawn_remote$|monitor_node$|pid_(encode|decode|encoded_size)$|(send|post)_pb$|pb_|global_|pg_|proc_|heart_|observer_|sock_)|^troupe__pid__' || true)
	[ -z "$extra" ] ||
		{ printf 'error: %s exports more than its headers declare:\n%s\n' "$node_so" "$extra" >&2; exit 1; }
	# Not grep -q: it may stop reading before nm is done, and pipefail
	# would take nm's SIGPIPE for a failure.
	nm -D --undefined-only "$node_so" | grep -c ' tr__dist_attach$' >/dev/null ||
		{ echo "error: $node_so does not take tr__dist_attach from libtroupe.so" >&2; exit 1; }
	check_shared_node "$tmp/consumer/consumer_node"
	"$tmp/consumer/consumer_node"
	check_static_node "$tmp/consumer/consumer_node_static"
	"$tmp/consumer/consumer_node_static"
	check_shared_node "$tmp/consumer/consumer_pb"
	"$tmp/consumer/consumer_pb"
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

if [ -n "${have_node:-}" ]; then
	step "node consumer via pkg-config"
	pkg-config --print-errors --exists troupe-node
	# shellcheck disable=SC2046
	"$cc" -std=c11 -Wall -Wextra -Werror "$src_dir/node_main.c" -o "$tmp/consumer_node_pc" \
		$(pkg-config --cflags --libs troupe-node)
	check_shared_node "$tmp/consumer_node_pc"
	"$tmp/consumer_node_pc"

	step "static node consumer via pkg-config --static"
	# The archives by name, and everything else they need from the .pc
	# files' private fields (Requires.private, Libs.private).
	static_libs=$(pkg-config --static --libs troupe-node |
		sed -e 's/-ltroupe-node\b/-l:libtroupe-node.a/' -e 's/-ltroupe\b/-l:libtroupe.a/')
	# shellcheck disable=SC2046,SC2086
	"$cc" -std=c11 -Wall -Wextra -Werror "$src_dir/node_main.c" -o "$tmp/consumer_node_pc_static" \
		$(pkg-config --cflags troupe-node) $static_libs
	check_static_node "$tmp/consumer_node_pc_static"
	"$tmp/consumer_node_pc_static"

	step "protobuf payload consumer via pkg-config (protodir)"
	mkdir -p "$tmp/pbgen"
	protoc-c --proto_path="$(pkg-config --variable=protodir troupe-node)" \
		--proto_path="$src_dir" --c_out="$tmp/pbgen" "$src_dir/order.proto"
	# shellcheck disable=SC2046
	"$cc" -std=c11 -Wall -Wextra -Werror -I"$tmp/pbgen" "$src_dir/pb_main.c" \
		"$tmp/pbgen/order.pb-c.c" -o "$tmp/consumer_pb_pc" \
		$(pkg-config --cflags --libs troupe-node libprotobuf-c)
	check_shared_node "$tmp/consumer_pb_pc"
	"$tmp/consumer_pb_pc"
fi

step "install test passed"
