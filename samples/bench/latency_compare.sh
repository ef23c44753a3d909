#!/usr/bin/env bash
# Tail latency beside Erlang/OTP: troupe-bench's call-latency (sequential
# request/replies between two actors while rings of actors keep every
# scheduler busy) and its twin peers/call_latency.erl (gen_server:call
# beside rings of processes), K runs each, alternately, and the medians of
# p50, p99, p99.9 and the rate.
#
#   samples/bench/latency_compare.sh [TROUPE_BENCH]
#
# Environment: K (5), N calls a run (200000), TROUPE_OPTS ("-s 2"; Erlang
# runs with +S 2).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=${1:-${TROUPE_BENCH:-build/samples/troupe-bench}}
k=${K:-5}
n=${N:-200000}
topts=${TROUPE_OPTS--s 2}
command -v erlc > /dev/null || { echo "$0: erlc is not installed" >&2; exit 2; }
beams=$(mktemp -d)
trap 'rm -rf "$beams"' EXIT
erlc -o "$beams" "$here/peers/call_latency.erl" || exit 1

declare -A runs
for ((i = 1; i <= k; i++)); do
	for sys in troupe erlang; do
		if [ "$sys" = troupe ]; then
			# shellcheck disable=SC2086 # a list of options
			out=$("$bench" $topts call-latency "$n" 2>&1)
		else
			out=$(erl -noshell +S 2 -pa "$beams" \
				-eval "call_latency:main(['$n']), init:stop()." 2>&1)
		fi
		line=$(awk '$2 == "latency_us" { print $4, $6, $8 }
			$1 == "call-latency" && $NF == "ops/s" { r = $(NF - 1) }
			END { print r }' <<< "$out" | paste -sd' ')
		echo "  $sys run $i: p50 p99 p99.9 (us), ops/s: $line" >&2
		runs[$sys]+="$line"$'\n'
	done
done
median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'; }
col() { printf '%s' "${runs[$1]}" | grep . | awk -v c="$2" '{ print $c }' | median; }
echo "call-latency, $n calls, medians of $k alternating runs (troupe-bench $topts, erl +S 2)"
printf '%-10s %10s %10s %10s %12s\n' system "p50 us" "p99 us" "p99.9 us" "calls/s"
for sys in troupe erlang; do
	printf '%-10s %10s %10s %10s %12s\n' "$sys" "$(col "$sys" 1)" "$(col "$sys" 2)" \
		"$(col "$sys" 3)" "$(col "$sys" 4)"
done
