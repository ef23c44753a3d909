#!/usr/bin/env bash
# One command from a fresh clone on Debian 12: installs what is missing,
# builds troupe in Release mode into build/ and runs the flagship demo.
# Arguments are passed on to the demo.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

banner() { printf '\n==== %s ====\n' "$*"; }

banner "setup: system packages"
bash deploy/setup.sh

banner "configure: Release build in build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTROUPE_BUILD_TESTS=OFF

banner "build: troupe-demo"
cmake --build build --target troupe-demo -j "$(nproc)"

demo=build/samples/demo/troupe-demo
[ -x "$demo" ] || demo=build/samples/troupe-demo
banner "run: $demo${*:+ $*}"
exec "$demo" "$@"
