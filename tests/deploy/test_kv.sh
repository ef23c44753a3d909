#!/usr/bin/env bash
# troupe-kv's side of the deploy contract (docs/deploy.md, "Settings"),
# with the real program on 127.0.0.1:
#
#   test_kv.sh TROUPE_KV
#
#   1. The environment names the program holds are exactly those of
#      kv_env.txt (which the unit's example and the manifests are checked
#      against), TROUPE_SEEDS and TROUPE_DNS aside, which the node
#      library reads.
#   2. sd_notify: three nodes, each with NOTIFY_SOCKET a unix datagram
#      socket of the test's own (notify_listen.py stands in for
#      systemd), the default cluster size (3), free ports. n1 takes its
#      cookie from $CREDENTIALS_DIRECTORY/cookie, as the unit hands it
#      (its TROUPE_COOKIE_FILE and TROUPE_COOKIE are wrong: the
#      credential must win); n2 and n3 from TROUPE_COOKIE_FILE (ending in
#      "\n" and in "\r\n", which are not the cookie; n3's TROUPE_COOKIE is
#      wrong). n1 alone sends nothing: it does not see a majority. With
#      n2 both send READY=1, after their logs say the other joined; n3
#      too once started. SIGTERM: each sends STOPPING=1 and exits with
#      status 0.
#   3. Without a cookie (none set; an empty credential directory; an
#      empty file; a file that cannot be read) a node refuses to start:
#      status 1, "no cookie" on stderr, nothing on NOTIFY_SOCKET. A bad
#      setting is status 2.
#
# Every process is stopped and the directory removed at the end, on
# failure too.
set -uo pipefail

kv=${1:?usage: $0 TROUPE_KV}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=kv.sh
source "$here/kv.sh"
[ -x "$kv" ] || fail "no troupe-kv at $kv"
command -v strings >/dev/null || fail "no strings (apt-get install binutils)"
deploy_python socket

# Short: the sockets' paths must fit in sun_path (108 bytes).
kv_dir=$(mktemp -d /tmp/troupe-kv-XXXXXX) || fail "mktemp"
listener=""
cleanup() {
	kv_kill_all
	[ -n "$listener" ] && { kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; }
	rm -rf "$kv_dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- 1. the environment names ------------------------------------------

want=$(grep -v -e '^#' -e '^$' -e '^TROUPE_SEEDS$' -e '^TROUPE_DNS$' "$here/kv_env.txt" | sort -u)
got=$(strings -a "$kv" | grep -o 'TROUPE_[A-Z_]*' | grep -v -e '^TROUPE_SEEDS$' -e '^TROUPE_DNS$' | sort -u)
if [ "$want" != "$got" ]; then
	diff <(echo "$want") <(echo "$got") >&2
	fail "troupe-kv's environment names are not kv_env.txt's (< kv_env.txt, > the program)"
fi
echo "ok: troupe-kv reads the $(wc -l <<<"$want") names of kv_env.txt (and TROUPE_SEEDS, TROUPE_DNS)"

# ---- 2. sd_notify with three nodes -------------------------------------

cookie="kv deploy test $$ $RANDOM"
mkdir -m 0700 "$kv_dir/creds" "$kv_dir/nocreds"
printf '%s' "$cookie" >"$kv_dir/creds/cookie"
chmod 0400 "$kv_dir/creds/cookie"
printf '%s\n' "$cookie" >"$kv_dir/cookie-lf"
printf '%s\r\n' "$cookie" >"$kv_dir/cookie-crlf"
printf 'wrong' >"$kv_dir/wrong"
: >"$kv_dir/empty"

kv_ports 12
node_port() { echo "${ports[$(($1 - 1))]}"; }
seeds="tcp://127.0.0.1:$(node_port 1),tcp://127.0.0.1:$(node_port 2),tcp://127.0.0.1:$(node_port 3)"
flags() { # I: node I's addresses
	echo --listen "tcp://127.0.0.1:$(node_port "$1")" \
		--resp "127.0.0.1:${ports[$(($1 + 2))]}" \
		--observer "127.0.0.1:${ports[$(($1 + 5))]}" \
		--client "tcp://127.0.0.1:${ports[$(($1 + 8))]}" --schedulers 2
}

"$python" -B "$here/notify_listen.py" 170 "$kv_dir/n1.sock" "$kv_dir/n2.sock" \
	"$kv_dir/n3.sock" "$kv_dir/lone.sock" >"$kv_dir/listener.out" 2>&1 &
listener=$!
for ((i = 0; i < 100; i++)); do
	grep -q listening "$kv_dir/listener.out" 2>/dev/null && break
	sleep 0.05
done
grep -q listening "$kv_dir/listener.out" || fail "the notify listener did not start: $(cat "$kv_dir/listener.out")"

notified() { # NAME: what NAME sent, one datagram a line
	cat "$kv_dir/$1.sock.log" 2>/dev/null
}
wait_notify() { # NAME WHAT SECONDS
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt $end ]; do
		notified "$1" | grep -qw -- "$2" && return 0
		sleep 0.05
	done
	return 1
}

# shellcheck disable=SC2046 # the flags are words
kv_start n1 NOTIFY_SOCKET="$kv_dir/n1.sock" TROUPE_SEEDS="$seeds" \
	CREDENTIALS_DIRECTORY="$kv_dir/creds" TROUPE_COOKIE_FILE="$kv_dir/wrong" \
	TROUPE_COOKIE=wrong -- $(flags 1)
kv_wait n1 30 'members 1/3' >/dev/null || fail "n1 did not start: $(tail -n 5 "$kv_dir/n1.log")"
# Two status lines (a second apart) and the boot's quiet second: alone,
# it must not be ready.
from=$(kv_lines n1)
kv_wait n1 30 'members 1/3' "$from" >/dev/null || fail "n1 stopped saying its status"
[ -z "$(notified n1)" ] || fail "n1 alone, one of three, sent '$(notified n1)'"
grep -q ': ready$' "$kv_dir/n1.log" && fail "n1 alone says it is ready"
echo "ok: n1 alone (1 of 3) sends nothing on NOTIFY_SOCKET"

# shellcheck disable=SC2046
kv_start n2 NOTIFY_SOCKET="$kv_dir/n2.sock" TROUPE_SEEDS="$seeds" \
	TROUPE_COOKIE_FILE="$kv_dir/cookie-lf" -- $(flags 2)
for n in n1 n2; do
	wait_notify "$n" READY=1 60 ||
		fail "$n sent no READY=1 with two of three up (it sent '$(notified "$n")'): $(tail -n 5 "$kv_dir/$n.log")"
done
for n in n1 n2; do
	other=$([ $n = n1 ] && echo n2 || echo n1)
	joined=$(grep -n -m1 "$other joined" "$kv_dir/$n.log" | cut -d: -f1)
	ready=$(grep -n -m1 ': ready$' "$kv_dir/$n.log" | cut -d: -f1)
	[ -n "$joined" ] && [ -n "$ready" ] && [ "$joined" -lt "$ready" ] ||
		fail "$n: READY=1 without '$other joined' first in its log"
	notified "$n" | head -n 1 | grep -qx 'READY=1 STATUS=serving' ||
		fail "$n's first datagram is '$(notified "$n" | head -n 1)', not READY=1 STATUS=serving"
done
echo "ok: n1 (the credential) and n2 (TROUPE_COOKIE_FILE ending in \\n) sent READY=1 once they saw each other"

# shellcheck disable=SC2046
kv_start n3 NOTIFY_SOCKET="$kv_dir/n3.sock" TROUPE_SEEDS="$seeds" \
	TROUPE_COOKIE_FILE="$kv_dir/cookie-crlf" TROUPE_COOKIE=wrong -- $(flags 3)
wait_notify n3 READY=1 60 ||
	fail "n3 sent no READY=1 (it sent '$(notified n3)'): $(tail -n 5 "$kv_dir/n3.log")"
kv_wait n3 10 'members 3/3' >/dev/null || fail "n3 does not see 3 of 3"
echo "ok: n3 (TROUPE_COOKIE_FILE ending in \\r\\n) joined and sent READY=1"

for n in n3 n2 n1; do
	kv_stop "$n"
	[ "$kv_status" -eq 0 ] || fail "$n exited with status $kv_status after SIGTERM: $(tail -n 5 "$kv_dir/$n.log")"
	wait_notify "$n" STOPPING=1 5 || fail "$n sent no STOPPING=1 (it sent '$(notified "$n")')"
	notified "$n" | tail -n 1 | grep -qx 'STOPPING=1' ||
		fail "$n's last datagram is '$(notified "$n" | tail -n 1)', not STOPPING=1"
done
echo "ok: on SIGTERM each sent STOPPING=1 and exited with status 0"

# ---- 3. no cookie, bad settings ----------------------------------------

refused() { # WHAT WANT-STATUS WANT-STDERR ENV...
	local what=$1 want=$2 msg=$3 rc
	shift 3
	env -u TROUPE_COOKIE -u TROUPE_COOKIE_FILE -u CREDENTIALS_DIRECTORY \
		NOTIFY_SOCKET="$kv_dir/lone.sock" "$@" \
		timeout 30 "$kv" --name lone --listen "tcp://127.0.0.1:${ports[0]}" \
		--resp "127.0.0.1:${ports[3]}" --observer "127.0.0.1:${ports[6]}" \
		--client "tcp://127.0.0.1:${ports[9]}" >"$kv_dir/lone.out" 2>"$kv_dir/lone.err"
	rc=$?
	[ $rc -eq "$want" ] || fail "$what: status $rc, $want expected: $(cat "$kv_dir/lone.err")"
	grep -q -- "$msg" "$kv_dir/lone.err" ||
		fail "$what: stderr does not say '$msg': $(cat "$kv_dir/lone.err")"
	echo "ok: $what: status $rc, $(grep -m1 -- "$msg" "$kv_dir/lone.err")"
}
refused "no cookie" 1 'no cookie'
refused "an empty credential directory, nothing else" 1 'no cookie' CREDENTIALS_DIRECTORY="$kv_dir/nocreds"
refused "an empty TROUPE_COOKIE" 1 'no cookie' TROUPE_COOKIE=
refused "an empty cookie file" 1 'no cookie' TROUPE_COOKIE_FILE="$kv_dir/empty"
refused "a cookie file that is not there" 1 "$kv_dir/none: No such file" TROUPE_COOKIE_FILE="$kv_dir/none"
refused "more copies than members" 2 'replicas: 4 is not a number in 1..3' \
	TROUPE_COOKIE="$cookie" TROUPE_REPLICAS=4
refused "a tick out of range" 2 'TROUPE_TICK_MS: 10 is not a number' \
	TROUPE_COOKIE="$cookie" TROUPE_TICK_MS=10
[ -z "$(notified lone)" ] || fail "a node that did not start sent '$(notified lone)'"
echo "ok: the nodes that did not start sent nothing on NOTIFY_SOCKET"
