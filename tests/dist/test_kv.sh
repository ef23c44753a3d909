#!/usr/bin/env bash
# troupe-kv (samples/kv) as its clients and its operators see it:
#
#   test_kv.sh PATH-TO-troupe-kv
#
# Three nodes on 127.0.0.1 (samples/kv/cluster.sh). Checks:
#   1. the commands through every node, each node reading what the others
#      wrote (redis-cli);
#   2. 2,000 keys and a counter survive the SIGKILL of each node in turn,
#      each killed node started again and given copies before the next;
#   3. the client endpoint through the Python client: a command, a
#      malformed one (refused by the parser process), and a call after the
#      parser was killed with SIGSEGV (its supervisor starts a new one);
#   4. a stall of every node at once past the failure-detection bound
#      (SIGSTOP, SIGCONT): each loses its majority, and the cluster comes
#      back with every write;
#   5. a node left alone (the two others killed) answers -CLUSTERDOWN;
#      the cluster serves again once they are back;
#   6. SIGTERM stops every node with status 0.
# Needs redis-cli and /usr/bin/python3 with python3-protobuf; says SKIP
# without them.
set -uo pipefail

kv=${1:?usage: $0 PATH-TO-troupe-kv}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
for tool in redis-cli openssl; do
	command -v "$tool" > /dev/null || { echo "SKIP: $tool is not installed"; exit 0; }
done
if ! /usr/bin/python3 -c 'import google.protobuf' 2> /dev/null; then
	echo "SKIP: /usr/bin/python3 has no google.protobuf (python3-protobuf)"
	exit 0
fi
# shellcheck source=../../samples/kv/cluster.sh
source "$root/samples/kv/cluster.sh"
work=$(mktemp -d /tmp/test-kv.XXXXXX)
trap 'kv_stop_all; rm -rf "$work"' EXIT
kv_cluster_init "$work" "$kv"

failures=0
ok() { echo "ok: $*"; }
bad() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
# expect WHAT WANT GOT
expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: wanted '$2', got '$3'"; fi
}
cli() { # cli NODE ARGS...
	local i=$1
	shift
	timeout 20 redis-cli -p "$(kv_resp_port "$i")" "$@" 2>&1
}
ready() { # ready NODE FROM-LINE
	kv_wait_line "$1" 30 ': ready$' "${2:-0}" > /dev/null
}
converged() { # every node sees three members and every primary
	local i ok
	for _ in $(seq 200); do
		ok=0
		for i in 1 2 3; do
			tail -n 3 "$work/n$i.log" | grep -q 'members 3/3, primaries 16/16' && ok=$((ok + 1))
		done
		[ "$ok" = 3 ] && return 0
		sleep 0.1
	done
	return 1
}
show_logs() {
	for i in 1 2 3; do echo "--- n$i"; grep -v proc_output "$work/n$i.log" | tail -25; done
}

for i in 1 2 3; do kv_start "$i"; done
for i in 1 2 3; do
	ready "$i" || { bad "n$i did not become ready"; show_logs; exit 1; }
done
ok "three nodes ready"

# ---- 1. commands ---------------------------------------------------------
expect "PING" "PONG" "$(cli 1 PING)"
expect "SET through n1" "OK" "$(cli 1 SET greeting hello)"
expect "GET through n2" "hello" "$(cli 2 GET greeting)"
expect "GET through n3" "hello" "$(cli 3 GET greeting)"
expect "MSET through n2" "OK" "$(cli 2 MSET a 1 b 2 c 3 d 4 e 5)"
expect "MGET through n3" "$(printf '1\n2\n3\n4\n5\n')" "$(cli 3 MGET a b c d e)"
expect "EXISTS over partitions" "5" "$(cli 1 EXISTS a b c d e zz)"
expect "DEL over partitions" "3" "$(cli 3 DEL a b c)"
expect "INCR" "1" "$(cli 1 INCR hits)"
expect "INCRBY through another node" "11" "$(cli 2 INCRBY hits 10)"
expect "INCR of a string" "ERR value is not an integer or out of range" "$(cli 3 INCR greeting)"
expect "SET NX of a key there" "" "$(cli 1 SET greeting other NX)"
expect "SET EX" "OK" "$(cli 1 SET brief x PX 300)"
sleep 0.6
expect "the key with a time to live has gone, on every copy" "" "$(cli 2 GET brief)"
expect "DBSIZE over every partition" "4" "$(cli 3 DBSIZE)"
expect "an unknown command" "ERR unknown command 'NOSUCH', with args beginning with: 'x' " "$(cli 1 NOSUCH x)"

# ---- 2. a node killed, each in turn ----------------------------------------
for k in $(seq 0 1999); do printf 'SET key:%d value-%d\r\n' "$k" "$k"; done > "$work/keys.cmd"
piped=$(timeout 60 redis-cli -p "$(kv_resp_port 1)" --pipe < "$work/keys.cmd" 2>&1 | tail -1)
expect "2,000 SETs through --pipe" "errors: 0, replies: 2000" "$piped"
for k in $(seq 0 1999); do echo "key:$k value-$k"; done > "$work/acked.txt"
for i in 1 2 3; do
	n=$(cli 1 GET hits)
	for _ in $(seq 5); do cli "$(((i % 3) + 1))" INCR hits > /dev/null; done
	from=()
	for j in 1 2 3; do from[$j]=$(kv_lines "$j"); done
	kill -KILL "${kv_pid[$i]}"
	wait "${kv_pid[$i]}" 2> /dev/null
	other=$(((i % 3) + 1))
	if kv_wait_line "$other" 10 "n$i left" "${from[$other]}" > /dev/null; then
		ok "n$i killed: n$other saw it go"
	else
		bad "n$other did not see n$i go"
	fi
	expect "the counter after n$i's loss" "$((n + 5))" "$(cli "$other" GET hits)"
	if /usr/bin/python3 "$root/samples/kv/client/kv_check.py" \
		"127.0.0.1:$(kv_resp_port "$other")" "$work/acked.txt" > "$work/check.txt"; then
		ok "n$i lost: $(cat "$work/check.txt")"
	else
		bad "n$i lost: $(cat "$work/check.txt")"
	fi
	kv_start "$i"
	ready "$i" "${from[$i]}" || bad "n$i did not become ready again"
	converged && ok "n$i back: the cluster converged" || { bad "no convergence after n$i's return"; show_logs; }
done
if /usr/bin/python3 "$root/samples/kv/client/kv_check.py" \
	"127.0.0.1:$(kv_resp_port 3)" "$work/acked.txt" > "$work/check.txt"; then
	ok "after the three losses: $(cat "$work/check.txt")"
else
	bad "after the three losses: $(cat "$work/check.txt")"
fi

# ---- 3. the client endpoint and its parser ----------------------------------
pycmd() { # pycmd NODE ARGS...
	local i=$1
	shift
	timeout 20 /usr/bin/python3 "$root/samples/kv/client/kv_client.py" \
		--url "tcp://127.0.0.1:$(kv_client_port "$i")" --node "n$i" \
		--cookie-file "$work/cookie" --proto-dir "$root/proto" cmd "$@" 2>&1
}
expect "SET through the client endpoint" "'OK'" "$(pycmd 2 SET py-key py-value)"
expect "read back over RESP" "py-value" "$(cli 3 GET py-key)"
parser=$(grep -o 'parser process up (pid [0-9]*)' "$work/n2.log" | tail -1 | grep -o '[0-9]*')
from=$(kv_lines 2)
kill -SEGV "$parser"
if kv_wait_line 2 10 'parser process down \(killed by signal 11' "$from" > /dev/null &&
	kv_wait_line 2 10 'parser process up' "$from" > /dev/null; then
	ok "the parser's SIGSEGV was seen and a new parser started"
else
	bad "no new parser after the SIGSEGV of pid $parser: $(grep 'parser process' "$work/n2.log" | tail -3 | paste -sd'|')"
fi
expect "GET through the client endpoint after the restart" "b'py-value'" "$(pycmd 2 GET py-key)"

# ---- 4. every node stalled past the bound at once ---------------------------
# Each sees the two others go and loses its majority; each keeps its
# copies, and when they meet again the holders of copies take the
# partitions back with them.
for i in 1 2 3; do kill -STOP "${kv_pid[$i]}"; done
sleep 2.5
for i in 1 2 3; do kill -CONT "${kv_pid[$i]}"; done
converged && ok "after a stall of every node: the cluster converged" ||
	{ bad "no convergence after a stall of every node"; show_logs; }
if /usr/bin/python3 "$root/samples/kv/client/kv_check.py" \
	"127.0.0.1:$(kv_resp_port 2)" "$work/acked.txt" > "$work/check.txt"; then
	ok "after the stall: $(cat "$work/check.txt")"
else
	bad "after the stall: $(cat "$work/check.txt")"
fi

# ---- 5. a node alone --------------------------------------------------------
for j in 1 2 3; do from[$j]=$(kv_lines "$j"); done
for i in 2 3; do kill -KILL "${kv_pid[$i]}"; wait "${kv_pid[$i]}" 2> /dev/null; done
kv_wait_line 1 10 'members 1/3' "${from[1]}" > /dev/null
got=$(cli 1 SET alone x)
case "$got" in
CLUSTERDOWN*) ok "a node alone refuses: $got" ;;
*) bad "a node alone answered '$got'" ;;
esac
for i in 2 3; do kv_start "$i"; done
for i in 1 2 3; do ready "$i" "${from[$i]}" || bad "n$i not ready after the others came back"; done
converged && ok "the cluster serves again" || bad "no convergence after the majority came back"
expect "a write after the majority came back" "OK" "$(cli 1 SET again x)"

# ---- 6. SIGTERM --------------------------------------------------------------
for i in 1 2 3; do
	kill -TERM "${kv_pid[$i]}"
	wait "${kv_pid[$i]}"
	expect "n$i's status after SIGTERM" "0" "$?"
	unset "kv_pid[$i]"
done

if [ "$failures" -gt 0 ]; then
	show_logs
	echo "test_kv: $failures failed"
	exit 1
fi
echo "test_kv: every check passed"
