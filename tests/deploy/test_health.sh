#!/usr/bin/env bash
# troupe-kv-health (deploy/container), the command of the image's
# HEALTHCHECK and of the Kubernetes probes, against a real troupe-kv
# node:
#
#   test_health.sh TROUPE_KV TROUPE_CTL SOURCE_DIR
#
# A troupe-kv node of a cluster of one (--cluster-size 1) on 127.0.0.1
# (free ports), with a cookie with blanks in it, read from a file that
# ends in "\r\n" (not part of the cookie, to the node). Once the node says
# it is ready, troupe-kv-health, with the troupe-ctl given first in its
# PATH, must answer 0 when it finds that cookie where troupe-kv would and
# reads it as troupe-kv does (TROUPE_COOKIE; TROUPE_COOKIE_FILE, ending
# in nothing, "\n", "\n\n" or "\r\n"; $CREDENTIALS_DIRECTORY/cookie,
# first, but only when readable: checked when not run as root), also for
# an observer given with a wildcard host; and 1 for a wrong cookie, for
# none, for an unreadable or empty file, and once the node has stopped
# (SIGTERM, status 0). With --ready (the readiness probe's, which asks
# /api/ready): 0 for that node, 2 when it could not be asked (a wrong
# cookie, none, the node stopped). Then a node of a cluster of 3 alone,
# which sees no majority: it is live all the same (0), as a liveness probe
# must find it, but not ready (1, saying why); once a second node of the
# three joins it, ready (0).
set -uo pipefail

kv=${1:?usage: $0 TROUPE_KV TROUPE_CTL SOURCE_DIR}
ctl=${2:?usage: $0 TROUPE_KV TROUPE_CTL SOURCE_DIR}
src=${3:?usage: $0 TROUPE_KV TROUPE_CTL SOURCE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=kv.sh
source "$here/kv.sh"
health=$src/deploy/container/troupe-kv-health
[ -x "$kv" ] || fail "no troupe-kv at $kv"
[ -x "$ctl" ] || fail "no troupe-ctl at $ctl"
[ -x "$health" ] || fail "$health is not executable"

kv_dir=$(mktemp -d "${TMPDIR:-/tmp}/troupe-health-XXXXXX") || fail "mktemp"
tmp=$kv_dir
cleanup() {
	kv_kill_all
	rm -rf "$kv_dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkdir "$tmp/bin" "$tmp/creds" "$tmp/locked"
ln -s "$(readlink -f "$ctl")" "$tmp/bin/troupe-ctl"
cookie="health test $$"
printf '%s\r\n' "$cookie" >"$tmp/node-cookie"

kv_ports 4
obs=127.0.0.1:${ports[2]}
port=${ports[2]}
kv_start alpha TROUPE_COOKIE_FILE="$tmp/node-cookie" -- --cluster-size 1 --replicas 1 \
	--listen "tcp://127.0.0.1:${ports[0]}" --resp "127.0.0.1:${ports[1]}" \
	--observer "$obs" --client "tcp://127.0.0.1:${ports[3]}" --schedulers 2
kv_wait alpha 60 ': ready$' >/dev/null || fail "the node did not become ready: $(tail -n 5 "$tmp/alpha.log")"
echo "a troupe-kv node, ready, with its observer on $obs"

# probe WANT DESCRIPTION [--FLAG] ENV=VALUE...: runs troupe-kv-health
# (with the flag if given) in an environment of only these (and PATH, and a
# sanitizer build's options), bounded.
keep=()
for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do
	[ -n "${!v:-}" ] && keep+=("$v=${!v}")
done
# Under ThreadSanitizer, troupe-ctl's runs get tests/tsan-ctl.supp, as in
# test_ctl (it says why: nng's own races are not troupe-ctl's).
[ -n "${TSAN_OPTIONS:-}" ] &&
	keep+=("TSAN_OPTIONS=halt_on_error=1:suppressions=$src/tests/tsan-ctl.supp")
probe() {
	local want=$1 what=$2 rc args=()
	shift 2
	case ${1:-} in
	--*)
		args=("$1")
		shift
		;;
	esac
	env -i PATH="$tmp/bin:/usr/bin:/bin" "${keep[@]}" "$@" timeout 20 "$health" "${args[@]}" >"$tmp/probe.out" 2>&1
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
printf '%s\r\n' "$cookie" >"$tmp/crlf"
printf 'wrong' >"$tmp/wrong"
: >"$tmp/empty"
printf '%s' "$cookie" >"$tmp/creds/cookie"
printf 'wrong' >"$tmp/locked/cookie"
chmod 0000 "$tmp/locked/cookie"

probe 0 "TROUPE_COOKIE" TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
probe 0 "TROUPE_COOKIE_FILE" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/plain"
probe 0 "TROUPE_COOKIE_FILE ending in a newline" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/newline"
probe 0 "TROUPE_COOKIE_FILE ending in two newlines" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/two-newlines"
probe 0 "TROUPE_COOKIE_FILE ending in \\r\\n" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/crlf"
probe 0 "the credential before TROUPE_COOKIE_FILE and TROUPE_COOKIE" TROUPE_OBSERVER="$obs" \
	CREDENTIALS_DIRECTORY="$tmp/creds" TROUPE_COOKIE_FILE="$tmp/wrong" TROUPE_COOKIE=wrong
probe 0 "TROUPE_COOKIE_FILE before TROUPE_COOKIE" TROUPE_OBSERVER="$obs" \
	TROUPE_COOKIE_FILE="$tmp/plain" TROUPE_COOKIE=wrong
probe 0 "an observer on 0.0.0.0, asked on loopback" TROUPE_OBSERVER="0.0.0.0:$port" TROUPE_COOKIE="$cookie"
probe 1 "a wrong cookie" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/wrong"
probe 1 "no cookie" TROUPE_OBSERVER="$obs"
probe 1 "an unreadable cookie file" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/none"
probe 1 "an empty cookie file" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/empty" TROUPE_COOKIE="$cookie"
probe 1 "an empty TROUPE_COOKIE_FILE" TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE= TROUPE_COOKIE="$cookie"
probe 0 "--ready, a node of a cluster of one" --ready TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/crlf"
grep -q '^alpha is ready$' "$tmp/probe.out" || fail "--ready printed '$(cat "$tmp/probe.out")'"
probe 2 "--ready, a wrong cookie" --ready TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/wrong"
probe 2 "--ready, no cookie" --ready TROUPE_OBSERVER="$obs"
probe 2 "--ready, an empty cookie file" --ready TROUPE_OBSERVER="$obs" TROUPE_COOKIE_FILE="$tmp/empty"
probe 2 "an unknown argument" --readiness TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
if [ "$(id -u)" -ne 0 ]; then
	# Root reads a file of mode 0000: only a user has one to skip.
	probe 0 "an unreadable credential skipped, as the node skips it" TROUPE_OBSERVER="$obs" \
		CREDENTIALS_DIRECTORY="$tmp/locked" TROUPE_COOKIE="$cookie"
fi

kv_stop alpha
[ "$kv_status" -eq 0 ] || fail "the node exited with status $kv_status after SIGTERM"
probe 1 "the node stopped" TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
probe 2 "--ready, the node stopped" --ready TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"

# A node that waits for its peers is live, and not ready; with a second
# node of the three it is ready. Each seeds the other.
kv_ports 8
obs=127.0.0.1:${ports[2]}
seeds="tcp://127.0.0.1:${ports[0]},tcp://127.0.0.1:${ports[4]}"
kv_start beta TROUPE_COOKIE="$cookie" TROUPE_SEEDS="$seeds" -- --cluster-size 3 \
	--listen "tcp://127.0.0.1:${ports[0]}" --resp "127.0.0.1:${ports[1]}" \
	--observer "$obs" --client "tcp://127.0.0.1:${ports[3]}" --schedulers 2
kv_wait beta 60 'members 1/3' >/dev/null || fail "the second node did not start: $(tail -n 5 "$tmp/beta.log")"
probe 0 "a node that sees no majority (1 of 3), live" TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
probe 1 "--ready, a node that sees no majority (1 of 3)" --ready TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
grep -q '^beta is not ready: forming the cluster: waiting for a majority$' "$tmp/probe.out" ||
	fail "--ready printed '$(cat "$tmp/probe.out")', not why"
grep -q ': ready$' "$tmp/beta.log" && fail "a node of a cluster of 3, alone, says it is ready"
kv_start gamma TROUPE_COOKIE="$cookie" TROUPE_SEEDS="$seeds" -- --cluster-size 3 \
	--listen "tcp://127.0.0.1:${ports[4]}" --resp "127.0.0.1:${ports[5]}" \
	--observer "127.0.0.1:${ports[6]}" --client "tcp://127.0.0.1:${ports[7]}" --schedulers 2
# The node says "ready" in its log after it has told its observer.
kv_wait beta 60 ': ready$' >/dev/null || fail "beta, with gamma (2 of 3), did not become ready: $(tail -n 5 "$tmp/beta.log")"
probe 0 "--ready, a node that sees a majority (2 of 3)" --ready TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
probe 0 "and it is live" TROUPE_OBSERVER="$obs" TROUPE_COOKIE="$cookie"
for n in gamma beta; do
	kv_stop "$n"
	[ "$kv_status" -eq 0 ] || fail "$n exited with status $kv_status after SIGTERM"
done
