#!/usr/bin/env bash
# The flagship demo: a three-node troupe-kv cluster on this machine under
# load from redis-benchmark and from a Python client of troupe's client
# endpoint; one node is killed with SIGKILL, a parser process with
# SIGSEGV, the killed node is started again; then every write that was
# acknowledged is read back. Exits 0 only if every check holds.
#
#   samples/kv/demo.sh [PATH-TO-troupe-kv]
#
# Environment: TROUPE_DEMO_SECONDS (30) is how long the load runs;
# TROUPE_DEMO_KEEP=1 keeps the nodes' logs.
# Everything runs on 127.0.0.1 on ports the system picks, in a temporary
# directory that is removed at the end, with every process stopped.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
kv=${1:-${TROUPE_KV:-$root/build/samples/troupe-kv}}
py=/usr/bin/python3
secs=${TROUPE_DEMO_SECONDS:-30}
for tool in "$kv" redis-benchmark redis-cli openssl "$py"; do
	if ! command -v "$tool" > /dev/null; then
		echo "demo: $tool is missing (bash deploy/setup.sh installs what is needed)" >&2
		exit 2
	fi
done

# shellcheck source=cluster.sh
source "$here/cluster.sh"
work=$(mktemp -d /tmp/troupe-kv-demo.XXXXXX)
load_pids=()
cleanup() {
	touch "$work/stop"
	for p in "${load_pids[@]}"; do kill -TERM "$p" 2> /dev/null; done
	for p in "${load_pids[@]}"; do wait "$p" 2> /dev/null; done
	kv_stop_all
	if [ -n "${TROUPE_DEMO_KEEP:-}" ]; then
		echo "demo: logs kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s.%N)
now() { "$py" -c "import time; print('%.1f' % (time.time() - $t0))"; }
say() { printf '[%5s s] %s\n' "$(now)" "$*"; }

kv_cluster_init "$work" "$kv"
export TROUPE_COOKIE_FILE=$work/cookie

# What the nodes say about the cluster, as it happens.
declare -A seen=([1]=0 [2]=0 [3]=0)
events() {
	local i n
	for i in 1 2 3; do
		n=$(kv_lines "$i")
		tail -n "+$((seen[$i] + 1))" "$work/n$i.log" | head -n "$((n - seen[$i]))" |
			grep -E 'joined|left|took over|parser process|gives up|claim failed|conflict|: ready$' |
			grep -v 'proc_output' | sed 's/^kv /    /'
		if [ "$i" = 1 ]; then
			tail -n "+$((seen[$i] + 1))" "$work/n$i.log" | head -n "$((n - seen[$i]))" |
				grep 'primaries moved' | sed 's/^kv /    /'
		fi
		seen[$i]=$n
	done
}

fail=0
check() { # check OK|FAIL text
	if [ "$1" = OK ]; then echo "  ok    $2"; else echo "  FAIL  $2"; fail=1; fi
}

echo "troupe-kv demo: three nodes on 127.0.0.1, 16 partitions, 2 copies of each key"
for i in 1 2 3; do kv_start "$i"; done
for i in 1 2 3; do
	if ! kv_wait_line "$i" 20 ': ready$' > /dev/null; then
		echo "demo: node n$i did not become ready; its log:" >&2
		tail -20 "$work/n$i.log" >&2
		exit 1
	fi
done
events
token=$(kv_token)
say "cluster ready; watch it live: http://127.0.0.1:$(kv_obs_port 1)/?token=$token"
say "clients: redis-cli -p $(kv_resp_port 1)  (any node: ports $(kv_resp_port 1) $(kv_resp_port 2) $(kv_resp_port 3))"

# The load: rounds of redis-benchmark on n1, and the Python client on n1's
# client endpoint (n2's if n1's does not answer).
(
	while [ ! -e "$work/stop" ]; do
		if redis-benchmark -h 127.0.0.1 -p "$(kv_resp_port 1)" -c 20 -n 20000 \
			-r 100000 -t set,get --csv >> "$work/rb.csv" 2>> "$work/rb.err"; then
			echo ok >> "$work/rb.rounds"
		else
			echo failed >> "$work/rb.rounds"
			sleep 0.2
		fi
	done
) &
load_pids+=($!)
"$py" "$here/client/kv_client.py" \
	--url "tcp://127.0.0.1:$(kv_client_port 1)" --node n1 \
	--url "tcp://127.0.0.1:$(kv_client_port 2)" --node n2 \
	--cookie-file "$work/cookie" --proto-dir "$root/proto" \
	load --seconds "$secs" --keys-file "$work/acked.txt" --prefix demo \
	> "$work/py.log" 2>&1 &
py_pid=$!
load_pids+=($py_pid)
say "load: redis-benchmark (20 clients, SET and GET) on n1, and the Python client writing demo:N keys through n1's client endpoint, for $secs s"

progress() {
	local rb pyline up i
	rb=$(tail -n 2 "$work/rb.csv" 2> /dev/null | awk -F'"' '/^"(SET|GET)"/ { printf "%s %.0f/s p50 %s p99 %s ms  ", $2, $4, $10, $14 }')
	pyline=$(grep 'py-client:' "$work/py.log" 2> /dev/null | tail -1 | sed 's/^py-client: //')
	up=0
	for i in 1 2 3; do kill -0 "${kv_pid[$i]}" 2> /dev/null && up=$((up + 1)); done
	say "nodes up $up/3 | redis-benchmark ${rb:-(first round running)}| python: ${pyline:-starting}"
}

load_t0=$(date +%s)
at() { # at SECONDS: waits until that many seconds into the load, reporting
	while [ $(($(date +%s) - load_t0)) -lt "$1" ]; do
		sleep 1
		events
		progress
	done
}

kill_at=$((secs * 4 / 15))
segv_at=$((secs * 7 / 15))
back_at=$((secs * 10 / 15))

at "$kill_at"
from=$(kv_lines 1)
say "SIGKILL node n3 (pid ${kv_pid[3]})"
kt=$(date +%s.%N)
kill -KILL "${kv_pid[3]}"
wait "${kv_pid[3]}" 2> /dev/null
if kv_wait_line 1 10 'n3 left' "$from" > /dev/null; then
	detect=$("$py" -c "import time; print('%.2f' % (time.time() - $kt))")
	say "n1 saw n3 go after $detect s"
else
	detect=""
fi
events

at "$segv_at"
parser=$(grep -o 'parser process up (pid [0-9]*)' "$work/n1.log" | tail -1 | grep -o '[0-9]*')
from=$(kv_lines 1)
say "SIGSEGV n1's parser process (pid $parser)"
st=$(date +%s.%N)
kill -SEGV "$parser" 2> /dev/null
if kv_wait_line 1 10 'parser process up' "$from" > /dev/null; then
	prestart=$("$py" -c "import time; print('%.2f' % (time.time() - $st))")
else
	prestart=""
fi
events

at "$back_at"
from3=$(kv_lines 3)
say "start n3 again"
bt=$(date +%s.%N)
kv_start 3
if kv_wait_line 3 20 ': ready$' "$from3" > /dev/null; then
	back=$("$py" -c "import time; print('%.2f' % (time.time() - $bt))")
else
	back=""
fi
events

at "$secs"
touch "$work/stop"
wait "$py_pid" 2> /dev/null
py_status=$?
for _ in $(seq 100); do
	[ "$(wc -l < "$work/rb.rounds" 2> /dev/null || echo 0)" -gt 0 ] || break
	jobs -r > /dev/null
	kill -0 "${load_pids[0]}" 2> /dev/null || break
	sleep 0.1
done
wait "${load_pids[0]}" 2> /dev/null
load_pids=()
say "load stopped"

# Converged: every node sees three members and sixteen primaries.
converged=no
for _ in $(seq 100); do
	ok=0
	for i in 1 2 3; do
		tail -n 3 "$work/n$i.log" | grep -q 'members 3/3, primaries 16/16' && ok=$((ok + 1))
	done
	if [ "$ok" = 3 ]; then converged=yes; break; fi
	sleep 0.1
done
events
copies3=$(grep 'members 3/3' "$work/n3.log" | tail -1 | sed -n 's/.*copies \([0-9]*\).*/\1/p')

echo
echo "==== summary ===="
rounds_ok=$(grep -c ok "$work/rb.rounds" 2> /dev/null)
rounds_failed=$(grep -c failed "$work/rb.rounds" 2> /dev/null)
rb_requests=$(awk -F'"' '/^"(SET|GET)"/ { n++ } END { print n * 20000 }' "$work/rb.csv")
echo "redis-benchmark: $rounds_ok rounds of 20,000 SETs and 20,000 GETs done (${rb_requests:-0} requests), ${rounds_failed:-0} rounds broken off"
if [ -s "$work/rb.err" ]; then
	echo "  why: $(grep -v '^$' "$work/rb.err" | sort | uniq -c | sort -rn | head -3 | tr -s ' ' | paste -sd ';')"
fi
grep -E 'py-client: (done|stopped|gave up)' "$work/py.log" | sed -e 's/^py-client: /python client: /' -e 's/, [0-9]* keys in .*//'
takeovers=$(cat "$work/n1.log" "$work/n2.log" | grep -c 'took over as primary')
moved=$(grep -h 'primaries moved' "$work/n1.log" | head -1 | sed 's/.*primaries moved: //')
echo "n3 killed (SIGKILL): seen gone after ${detect:-?} s; $takeovers partitions taken over by replicas on n1 and n2 (${moved:-none})"
echo "n1's parser killed (SIGSEGV): a new one was up after ${prestart:-?} s"
echo "n3 started again: ready after ${back:-?} s, holding ${copies3:-0} copies"
"$py" "$here/client/kv_check.py" "127.0.0.1:$(kv_resp_port 3)" "$work/acked.txt" > "$work/check3.txt"
check3=$?
"$py" "$here/client/kv_check.py" "127.0.0.1:$(kv_resp_port 2)" "$work/acked.txt" > "$work/check2.txt"
check2=$?
sed 's/^check: /through n3: /' "$work/check3.txt"
sed 's/^check: /through n2: /' "$work/check2.txt" | head -1
echo
echo "checks:"
[ -n "$detect" ] && check OK "the cluster saw n3 go within ${detect} s" || check FAIL "the cluster did not see n3 go"
[ "${takeovers:-0}" -gt 0 ] && check OK "n3's partitions moved to replicas ($takeovers takeovers)" || check FAIL "no partition was taken over"
[ -n "$prestart" ] && check OK "the parser was restarted by its supervisor" || check FAIL "no new parser came up"
[ -n "$back" ] && check OK "n3 rejoined and got copies (${copies3:-0})" || check FAIL "n3 did not rejoin"
[ "$converged" = yes ] && check OK "every node sees 3 members and 16 primaries" || check FAIL "the cluster did not converge"
[ "${rounds_ok:-0}" -gt 0 ] && check OK "redis-benchmark ran throughout" || check FAIL "redis-benchmark finished no round"
[ "$py_status" = 0 ] && check OK "the Python client ran to its end" || check FAIL "the Python client stopped (status $py_status)"
[ "$check3" = 0 ] && [ "$check2" = 0 ] && check OK "no acknowledged write was lost" || check FAIL "acknowledged writes are missing"
echo
if [ "$fail" = 0 ]; then
	echo "demo: every check holds ($(now) s)"
else
	echo "demo: some checks failed; the nodes' logs follow"
	for i in 1 2 3; do echo "--- n$i"; grep -v proc_output "$work/n$i.log" | tail -30; done
fi
exit "$fail"
