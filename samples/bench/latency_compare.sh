#!/usr/bin/env bash
# Tail latency beside Erlang/OTP: troupe-bench's call-latency (sequential
# request/replies between two actors while rings of actors keep every
# scheduler busy) and remote-call-latency (the same to a server on a second
# node process, with the rings on both nodes), and their twin
# peers/call_latency.erl (gen_server:call beside rings of processes, on one
# BEAM node, or to a second one that it starts with peer), K runs of each,
# alternately, and the medians of p50, p99, p99.9 and the rate.
#
#   samples/bench/latency_compare.sh [TROUPE_BENCH]
#
# Environment: K (5), N calls a local run (200000), RN calls a remote run
# (20000: on 2 cores the two nodes' rings leave a remote call far fewer
# turns), TROUPE_OPTS ("-s 2"; Erlang runs with +S 2, its peer node too).
# remote-call-latency is left out when troupe-bench was built without the
# transport.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=${1:-${TROUPE_BENCH:-build/samples/troupe-bench}}
k=${K:-5}
n=${N:-200000}
rn=${RN:-20000}
topts=${TROUPE_OPTS--s 2}
command -v erlc > /dev/null || { echo "$0: erlc is not installed" >&2; exit 2; }
beams=$(mktemp -d)
trap 'rm -rf "$beams"' EXIT
erlc -o "$beams" "$here/peers/call_latency.erl" || exit 1
works=call-latency
"$bench" -h | grep -q remote-call-latency && works+=" remote-call-latency"

# One run of workload $1 on system $2: its p50 p99 p99.9 (us) and ops/s.
run() {
	local w=$1 sys=$2 out calls=$n
	[ "$w" = call-latency ] || calls=$rn
	if [ "$sys" = troupe ]; then
		# shellcheck disable=SC2086 # a list of options
		out=$("$bench" $topts "$w" "$calls" 2>&1)
	elif [ "$w" = call-latency ]; then
		out=$(erl -noshell +S 2 -pa "$beams" \
			-eval "call_latency:main(['$calls']), init:stop()." 2>&1)
	else
		out=$(erl -noshell +S 2 -sname "troupe_latency_$$" -pa "$beams" \
			-eval "call_latency:main([remote, '$calls']), init:stop()." 2>&1)
	fi
	awk -v w="$w" '$1 == w && $2 == "latency_us" { print $4, $6, $8 }
		$1 == w && $NF == "ops/s" { r = $(NF - 1) }
		END { print r }' <<< "$out" | paste -sd' '
}

declare -A runs
for w in $works; do
	for ((i = 1; i <= k; i++)); do
		for sys in troupe erlang; do
			line=$(run "$w" "$sys")
			echo "  $w $sys run $i: p50 p99 p99.9 (us), ops/s: $line" >&2
			runs[$w.$sys]+="$line"$'\n'
		done
	done
done
median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'; }
col() { printf '%s' "${runs[$1]}" | awk -v c="$2" 'NF == 4 { print $c }' | median; }
for w in $works; do
	calls=$n
	[ "$w" = call-latency ] || calls=$rn
	echo "$w, $calls calls, medians of $k alternating runs (troupe-bench $topts, erl +S 2)"
	printf '%-10s %10s %10s %10s %12s\n' system "p50 us" "p99 us" "p99.9 us" "calls/s"
	for sys in troupe erlang; do
		printf '%-10s %10s %10s %10s %12s\n' "$sys" "$(col "$w.$sys" 1)" \
			"$(col "$w.$sys" 2)" "$(col "$w.$sys" 3)" "$(col "$w.$sys" 4)"
	done
done
