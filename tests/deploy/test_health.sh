#!/usr/bin/env bash
# troupe-kv-health (deploy/container), the command of the image's
# HEALTHCHECK and of the Kubernetes probes, against a real node's
# observer:
#
#   test_health.sh TEST_NODE_PROGRAM TROUPE_CTL SOURCE_DIR
#
# A test node (tests/dist/node_main.c) with its observer on 127.0.0.1
# (any free port) and a cookie with a blank in it. troupe-kv-health, with
# the troupe-ctl given first in its PATH, must answer 0 when it finds that
# cookie where troupe-kv would (TROUPE_COOKIE; TROUPE_COOKIE_FILE, one
# trailing newline not part of it; $CREDENTIALS_DIRECTORY/cookie, first),
# also for an observer given with a wildcard host; and 1 for a wrong
# cookie, for none, and once the node is gone.
set -uo pipefail

node_main=${1:?usage: $0 TEST_NODE_PROGRAM TROUPE_CTL SOURCE_DIR}
ctl=${2:?usage: $0 TEST_NODE_PROGRAM TROUPE_CTL SOURCE_DIR}
src=${3:?usage: $0 TEST_NODE_PROGRAM TROUPE_CTL SOURCE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
health=$src/deploy/container/troupe-kv-health
[ -x "$node_main" ] || fail "no test node program at $node_main"
[ -x "$ctl" ] || fail "no troupe-ctl at $ctl"
[ -x "$health" ] || fail "$health is not executable"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-health-XXXXXX") || fail "mktemp"
node_pid=""
cleanup() {
	[ -n "$node_pid" ] && { kill -9 "$node_pid" 2>/dev/null; wait "$node_pid" 2>/dev/null; }
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkdir "$tmp/bin" "$tmp/creds"
ln -s "$(readlink -f "$ctl")" "$tmp/bin/troupe-ctl"
cookie="health test $$"

"$node_main" alpha tcp://127.0.0.1:0 "$cookie" --observer http://127.0.0.1:0 \
	>"$tmp/node.out" 2>"$tmp/node.err" &
node_pid=$!
for ((i = 0; i < 200; i++)); do
	grep -q '^READY ' "$tmp/node.out" 2>/dev/null && break
	sleep 0.05
done
grep -q '^READY ' "$tmp/node.out" || fail "the node did not start: $(cat "$tmp/node.err")"
obs=$(sed -n 's|^OBSERVER http://||p' "$tmp/node.out")
port=${obs##*:}
echo "a node with its observer on $obs"

# probe WANT DESCRIPTION ENV=VALUE...: runs troupe-kv-health in an
# environment of only these (and PATH, and a sanitizer build's options),
# bounded.
keep=()
for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do
	[ -n "${!v:-}" ] && keep+=("$v=${!v}")
done
# Under ThreadSanitizer, troupe-ctl's runs get tests/tsan-ctl.supp, as in
# test_ctl (it says why: nng's own races are not troupe-ctl's).
[ -n "${TSAN_OPTIONS:-}" ] &&
	keep+=("TSAN_OPTIONS=halt_on_error=1:suppressions=$src/tests/tsan-ctl.supp")
probe() {
	local want=$1 what=$2 rc
	shift 2
	env -i PATH="$tmp/bin:/usr/bin:/bin" "${keep[@]}" "$@" timeout 20 "$health" >"$tmp/probe.out" 2>&1
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		cat "$tmp/probe.out" >&2
		fail "$what: status $rc, $want expected"
	fi
	echo "ok: $what: $rc ($(head -n 1 "$tmp/probe.out"))"
}

printf '%s' "$cookie" >"$tmp/plain"
printf '%s\n' "$cookie" >"$tmp/newline"
printf '%s\n\n' "$cookie" >"$tmp/two-newlines"
printf 'wrong' >"$tmp/wrong"
printf '%s' "$cookie" >"$tmp/creds/cookie"

probe 0 "TROUPE_COOKIE" TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
probe 0 "TROUPE_COOKIE_FILE" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/plain"
probe 0 "TROUPE_COOKIE_FILE ending in a newline" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/newline"
probe 1 "TROUPE_COOKIE_FILE ending in two newlines" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/two-newlines"
probe 0 "the credential before TROUPE_COOKIE_FILE and TROUPE_COOKIE" TROUPE_OBSERVER="$obs" \
	CREDENTIALS_DIRECTORY="$tmp/creds" TROUPE_COOKIE_FILE="$tmp/wrong" TROUPE_COOKIE=wrong
probe 0 "TROUPE_COOKIE_FILE before TROUPE_COOKIE" TROUPE_OBSERVER="$obs" \
	TROUPE_COOKIE_FILE="$tmp/plain" TROUPE_COOKIE=wrong
probe 0 "an observer on 0.0.0.0, asked on loopback" TROUPE_OBSERVER="0.0.0.0:$port" TROUPE_COOKIE="$cookie"
probe 1 "a wrong cookie" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/wrong"
probe 1 "no cookie" TROUPE_OBSERVER="$obs"
probe 1 "an unreadable cookie file" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/none"

kill "$node_pid"
wait "$node_pid" 2>/dev/null
node_pid=""
probe 1 "the node gone" TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
