#!/usr/bin/env bash
# One command from a fresh clone on Debian 12: installs what is missing,
# builds troupe in Release mode into build/ and runs the flagship demo, a
# three-node troupe-kv cluster under load that loses a node and a process
# and heals (samples/kv/README.md).
#
#   bash deploy/demo.sh           the flagship
#   bash deploy/demo.sh local     the one-process demo of local speed
#                                 (word count, a million-actor ring,
#                                 timers); further arguments go to it
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

banner() { printf '\n==== %s ====\n' "$*"; }

banner "setup: system packages"
bash deploy/setup.sh

banner "configure: Release build in build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTROUPE_BUILD_TESTS=OFF

if [ "${1:-}" = local ]; then
	shift
	banner "build: troupe-demo"
	cmake --build build --target troupe-demo -j "$(nproc)"
	demo=build/samples/demo/troupe-demo
	[ -x "$demo" ] || demo=build/samples/troupe-demo
	banner "run: $demo${*:+ $*}"
	exec "$demo" "$@"
fi

banner "build: troupe-kv"
cmake --build build --target troupe-kv -j "$(nproc)"
banner "run: samples/kv/demo.sh"
exec bash samples/kv/demo.sh build/samples/troupe-kv
