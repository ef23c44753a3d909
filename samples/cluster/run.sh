#!/usr/bin/env bash
# troupe-jobs on three node processes on 127.0.0.1: b and c run workers,
# a runs workers and a client that submits 600 jobs. Once 150 are done,
# the node whose dispatcher holds the global name is killed with SIGKILL
# (c, if a holds it): another node's dispatcher takes over, the lost
# node's workers leave the group, and the client sends again what was
# lost. A second later the killed node is started again: it rejoins the
# cluster (a new incarnation), its dispatcher stands by and its workers
# get jobs again. Exits 0 when the client has every job done.
#
#   samples/cluster/run.sh [TROUPE_JOBS]      (default build/samples/troupe-jobs)
set -euo pipefail

bin="${1:-build/samples/troupe-jobs}"
[ -x "$bin" ] || { echo "run.sh: no $bin (build first)" >&2; exit 2; }
logs="$(mktemp -d)"
declare -A pid port
cleanup() {
	for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$logs"
}
trap cleanup EXIT

# Ports from the process id, so that two runs at once do not collide, and
# below Linux's ephemeral range (32768 and up by default), where any
# outgoing connection of the machine may hold one.
base=$((20000 + ($$ % 12000)))
port=([b]=$base [c]=$((base + 1)) [a]=$((base + 2)))
export TROUPE_SEEDS="tcp://127.0.0.1:$base,tcp://127.0.0.1:$((base + 1))"
export TROUPE_COOKIE="troupe-jobs run.sh $$"

start() { # name args...
	local name="$1"
	shift
	"$bin" "$name" "tcp://127.0.0.1:${port[$name]}" "$@" >>"$logs/$name" 2>&1 &
	pid[$name]=$!
}

# Which of b and c has the dispatcher that holds the name (by the last
# thing each dispatcher said), if either.
holder() {
	for n in b c; do
		if grep -E "dispatcher (active|lost|on standby)" "$logs/$n" |
			tail -n 1 | grep -q "active here"; then
			echo "$n"
			return
		fi
	done
}

start b
start c
start a --submit 600 --wait-nodes 3

victim=""
restarted=""
for _ in $(seq 1 600); do
	sleep 0.1
	if [ -z "$victim" ] &&
		grep -qE "so far (1[5-9][0-9]|[2-9][0-9]{2})/" "$logs/a"; then
		victim=$(holder)
		if [ -n "$victim" ]; then
			echo "== killing node $victim (kill -9), whose dispatcher holds the name"
		else
			victim=c
			echo "== killing node c (kill -9); a, the client's node, holds the dispatcher name"
		fi
		kill -9 "${pid[$victim]}"
		wait "${pid[$victim]}" 2>/dev/null || true
		echo "== node $victim killed" >>"$logs/$victim"
		killed_at=$SECONDS
	elif [ -n "$victim" ] && [ -z "$restarted" ] &&
		[ $((SECONDS - killed_at)) -ge 1 ]; then
		echo "== starting node $victim again"
		start "$victim"
		restarted=yes
	fi
	kill -0 "${pid[a]}" 2>/dev/null || break
done
status=0
wait "${pid[a]}" || status=$?
for n in b c a; do
	echo "== node $n"
	cat "$logs/$n"
done
if [ "$status" -ne 0 ] || ! grep -q "finished" "$logs/a"; then
	echo "run.sh: the client did not finish" >&2
	exit 1
fi
echo "== all jobs done${victim:+, across the loss and restart of node $victim}"
