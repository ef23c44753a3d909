#!/usr/bin/env bash
# Compares troupe-resp with redis-server under the same client,
# redis-benchmark: for each pipeline depth (-P), each server runs K
# times, alternately (one run of each, then the next round), and the
# medians of requests per second, p50 and p99 of each test are printed
# with the ratio troupe / Redis. Every run gets a fresh server on a free
# port of 127.0.0.1 (redis-server with --save '' --appendonly no), stopped
# when its run ends. Medians, because a single run on a shared machine
# says little.
#
#   samples/bench/resp_compare.sh
#
# Environment:
#   TROUPE_RESP  the troupe server, a command that is given -p PORT
#                (build/samples/troupe-resp)
#   REDIS        redis-server                (redis-server on the PATH)
#   K            runs per depth and server   (3)
#   N            requests a run              (200000)
#   C            client connections          (50)
#   PIPELINES    the -P depths               ("1 16")
#   TESTS        redis-benchmark's -t        (set,get)
#   BENCH_OPTS   more options of redis-benchmark ("")
#
# redis-benchmark runs on the same machine as the server and takes its
# share of the cores alike for both; Redis runs its commands on one
# thread, troupe-resp on one scheduler per core. Beside the rates, the
# server's CPU time per request (user + system, from /proc, over the
# whole run) says what each request costs, which depends less on what
# else the machine is doing than the rates do. The latencies come from
# redis-benchmark's --csv (Redis 7's prints p50 and p99); the ratio of
# requests per second is troupe / Redis, those of the latencies and of
# the CPU time Redis / troupe: above 1x, troupe is ahead. The exit status
# is 1 if any run failed (its server's output is shown).
set -uo pipefail

troupe="${TROUPE_RESP:-build/samples/troupe-resp}"
redis="${REDIS:-redis-server}"
k="${K:-3}"
n="${N:-200000}"
c="${C:-50}"
pipelines="${PIPELINES:-1 16}"
tests="${TESTS:-set,get}"
bench_opts="${BENCH_OPTS:-}"

usage() {
	echo "usage: $0   (no arguments: see the comment at the top)" >&2
	exit 2
}
[ $# -eq 0 ] || usage
command -v redis-benchmark >/dev/null || {
	echo "$0: no redis-benchmark on the PATH" >&2
	exit 1
}
for v in "K=$k" "N=$n" "C=$c"; do
	case "${v#*=}" in
	'' | *[!0-9]* | 0)
		echo "$0: ${v%%=*} must be a positive integer" >&2
		exit 2
		;;
	esac
done
for p in $pipelines; do
	case "$p" in
	'' | *[!0-9]* | 0) echo "$0: PIPELINES wants positive integers" >&2; exit 2 ;;
	esac
done

tmp=$(mktemp -d) || exit 1
srv_pid=""
# stop_server, port_has, pick_port, cpu_ticks, median, ratio
# shellcheck source=samples/bench/server_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/server_lib.sh"
trap 'stop_server; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

systems=""
read -ra troupe_cmd <<<"$troupe"
if [ ${#troupe_cmd[@]} -gt 0 ] && [ -x "${troupe_cmd[0]}" ]; then
	systems+=" troupe"
else
	echo "note: no troupe-resp at '$troupe' (TROUPE_RESP): skipped" >&2
fi
if command -v "$redis" >/dev/null; then
	systems+=" redis"
else
	echo "note: no redis-server ('$redis', REDIS): skipped" >&2
fi
[ -n "$systems" ] || { echo "$0: no server to run" >&2; exit 1; }

# Starts server $1 on port $2 (srv_pid) and waits until it answers PING.
start_server() {
	local sys=$1 port=$2
	if [ "$sys" = troupe ]; then
		"${troupe_cmd[@]}" -p "$port" >"$tmp/server.log" 2>&1 &
	else
		"$redis" --port "$port" --bind 127.0.0.1 --save '' \
		    --appendonly no >"$tmp/server.log" 2>&1 &
	fi
	srv_pid=$!
	for _ in $(seq 200); do
		if port_has "$port" 0A &&
			[ "$(timeout 5 redis-cli -p "$port" PING 2>/dev/null)" = PONG ]; then
			return 0
		fi
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "  $sys: the server did not listen on $port:" >&2
	sed 's/^/    /' "$tmp/server.log" >&2
	stop_server
	return 1
}

# One run of server $1 at depth $2: the CSV lines in $tmp/run.csv, the
# server's CPU time per request in us in `cpu`.
one_run() {
	local sys=$1 p=$2 port t0 t1 ntests
	port=$(pick_port) || { echo "  no free port" >&2; return 1; }
	start_server "$sys" "$port" || return 1
	t0=$(cpu_ticks "$srv_pid")
	# shellcheck disable=SC2086 # BENCH_OPTS is a list of options
	timeout 600 redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -c "$c" \
	    -P "$p" -t "$tests" --csv $bench_opts >"$tmp/run.csv" 2>"$tmp/run.err"
	local st=$?
	t1=$(cpu_ticks "$srv_pid")
	ntests=$(grep -vc '^"test"' "$tmp/run.csv")
	cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" \
	    -v r="$((n * (ntests > 0 ? ntests : 1)))" \
	    'BEGIN { printf "%.2f\n", (b - a) / hz * 1e6 / r }')
	stop_server
	if [ $st -ne 0 ] || grep -qi error "$tmp/run.csv" "$tmp/run.err"; then
		echo "  $sys -P $p: redis-benchmark failed ($st):" >&2
		cat "$tmp/run.err" >&2
		tail -n 20 "$tmp/server.log" | sed 's/^/    /' >&2
		return 1
	fi
}

# Results: one file per system, depth, test and metric, a value a line.
failures=0
names=""
for ((i = 1; i <= k; i++)); do
	for p in $pipelines; do
		for sys in $systems; do
			if ! one_run "$sys" "$p"; then
				failures=$((failures + 1))
				continue
			fi
			echo "$cpu" >>"$tmp/$sys.$p.cpu"
			echo "  $sys -P $p: run $i: server CPU $cpu us a request" >&2
			# "SET","rps","avg","min","p50","p95","p99","max"
			while IFS=, read -r t rps _ _ p50 _ p99 _; do
				t=${t//\"/}
				[ "$t" = test ] && continue
				case " $names " in *" $t "*) ;; *) names+=" $t" ;; esac
				echo "${rps//\"/}" >>"$tmp/$sys.$p.$t.rps"
				echo "${p50//\"/}" >>"$tmp/$sys.$p.$t.p50"
				echo "${p99//\"/}" >>"$tmp/$sys.$p.$t.p99"
				echo "  $sys -P $p $t: run $i: ${rps//\"/} requests/s," \
				    "p50 ${p50//\"/} ms, p99 ${p99//\"/} ms" >&2
			done <"$tmp/run.csv"
		done
	done
done

med() { [ -f "$1" ] && median <"$1" || echo -; }

echo
echo "medians of $k runs of $n requests, $c connections; ratios: requests/s"
echo "troupe / redis, latencies and CPU time redis / troupe, so above 1x"
echo "troupe is ahead"
printf '%-4s %-6s %-14s %12s %12s %8s\n' -P test metric troupe redis ratio
for p in $pipelines; do
	for t in $names; do
		for m in rps p50 p99; do
			tv=$(med "$tmp/troupe.$p.$t.$m")
			rv=$(med "$tmp/redis.$p.$t.$m")
			case $m in
			rps) name="requests/s" r=$(ratio "$tv" "$rv") ;;
			*) name="$m ms" r=$(ratio "$rv" "$tv") ;;
			esac
			printf '%-4s %-6s %-14s %12s %12s %8s\n' "$p" "$t" "$name" \
			    "$tv" "$rv" "$r"
		done
	done
	tv=$(med "$tmp/troupe.$p.cpu")
	rv=$(med "$tmp/redis.$p.cpu")
	printf '%-4s %-6s %-14s %12s %12s %8s\n' "$p" all "CPU us/req" \
	    "$tv" "$rv" "$(ratio "$rv" "$tv")"
done
if [ "$failures" -gt 0 ]; then
	echo "$failures runs FAILED (see above)" >&2
	exit 1
fi
