#!/usr/bin/env bash
# Compiles the C blocks of a document that are marked "<!-- c: NAME -->"
# as plain C11 (-pedantic, warnings as errors), against the public
# headers: documentation whose examples do not build misleads.
#   doc_c.sh CC INCLUDE_DIR[:INCLUDE_DIR...] DOC...
# (the public headers and the build tree's generated troupe/version.h)
set -euo pipefail
cc=$1
IFS=: read -r -a incs <<<"$2"
shift 2
inc_flags=()
for d in "${incs[@]}"; do inc_flags+=("-I$d"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for doc in "$@"; do
	awk -v dir="$tmp" '
		/^<!-- c: [A-Za-z0-9_-]+ -->$/ { name = $3; want = 1; next }
		want && /^```c$/ { file = dir "/" name ".c"; on = 1; want = 0; next }
		on && /^```$/ { on = 0; close(file); next }
		on { print > file }
	' "$doc"
done
for f in "$tmp"/*.c; do
	[ -e "$f" ] || continue
	"$cc" -std=c11 -pedantic -Wall -Wextra -Werror "${inc_flags[@]}" -c "$f" \
		-o "${f%.c}.o"
	echo "ok: $(basename "$f") compiles"
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "no marked C block found" >&2; exit 1; }
