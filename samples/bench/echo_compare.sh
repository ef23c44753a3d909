#!/usr/bin/env bash
# Compares troupe's echo server with its Erlang/OTP twin under the same
# client, troupe-echo-load: for each configuration (CONNS connections of
# which ACTIVE run a closed loop of 64-byte round trips, the others idle),
# each server runs K times, alternately (one run of each, then the next
# round), and the medians of round trips per second, p50 and p99 are
# printed with the ratio troupe / Erlang. Every run gets a fresh server on
# a free port of 127.0.0.1, stopped when its run ends. Medians, because a
# single run on a shared machine says little.
#
#   samples/bench/echo_compare.sh
#
# Environment:
#   TROUPE_ECHO  the troupe echo server, a command that is given -p PORT
#                (build/samples/troupe-echo); when it is not there, the
#                troupe runs are skipped with a note
#   LOAD         the client                  (build/samples/troupe-echo-load)
#   K            runs per configuration and server (3)
#   N            round trips a run           (200000)
#   CONFIGS      CONNS:ACTIVE pairs          ("10000:50 50:50")
#   LOAD_OPTS    more options of the client  ("")
#   ERL_OPTS     options of erl              ("+S 2 +K true +Q 65536")
#
# The Erlang twin, samples/bench/peers/echo_server.erl, is compiled into a
# temporary directory and run with erl +S 2 (two schedulers, as the peer
# benchmarks are), when erlc and erl are on the PATH. The ceiling,
# samples/bench/peers/echo_epoll.c (one thread, one epoll set, no runtime
# at all), is compiled with cc -O2 and runs beside them: what the machine
# can do at best with this client. The client runs on
# the same machine as the server, with one thread unless LOAD_OPTS says
# otherwise, and takes its share of the cores alike for both servers.
#
# 10,000 connections need 10,000 open files in the client and as many in
# the server: the script raises its soft limit (ulimit -n) to the hard one
# when it must, which the servers and the client inherit, and skips a
# configuration that the hard limit (ulimit -Hn) cannot hold.
#
# Beside the rates, the server's CPU time per round trip (user + system,
# from /proc, over the whole run) says what each round trip costs, which
# depends less on what else the machine is doing (the client included)
# than the rates do.
#
# The ratio of round trips per second is troupe / Erlang; those of the
# latencies and of the CPU time Erlang / troupe: above 1x, troupe is
# ahead. The exit status is 1 if any run failed (its server's output is
# shown).
set -uo pipefail

troupe="${TROUPE_ECHO:-build/samples/troupe-echo}"
load="${LOAD:-build/samples/troupe-echo-load}"
k="${K:-3}"
n="${N:-200000}"
configs="${CONFIGS:-10000:50 50:50}"
load_opts="${LOAD_OPTS:-}"
erl_opts="${ERL_OPTS:-+S 2 +K true +Q 65536}"

usage() {
	echo "usage: $0   (no arguments: see the comment at the top)" >&2
	exit 2
}
[ $# -eq 0 ] || usage
[ -x "$load" ] || { echo "$0: no troupe-echo-load at $load" >&2; usage; }
for v in "K=$k" "N=$n"; do
	case "${v#*=}" in
	'' | *[!0-9]* | 0)
		echo "$0: ${v%%=*} must be a positive integer" >&2
		exit 2
		;;
	esac
done
for cfg in $configs; do
	case "$cfg" in
	[1-9]*:[1-9]*) ;;
	*) echo "$0: CONFIGS wants CONNS:ACTIVE pairs, not $cfg" >&2; exit 2 ;;
	esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
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
	echo "note: no troupe echo server at '$troupe' (TROUPE_ECHO):" \
	    "troupe is skipped" >&2
fi
if command -v erlc >/dev/null && command -v erl >/dev/null &&
	erlc -o "$tmp" "$here/peers/echo_server.erl"; then
	systems+=" erlang"
else
	echo "note: no erl and erlc (or echo_server.erl did not build):" \
	    "Erlang is skipped" >&2
fi
if command -v cc >/dev/null &&
	cc -O2 -o "$tmp/echo_epoll" "$here/peers/echo_epoll.c"; then
	systems+=" epoll"
else
	echo "note: no cc (or echo_epoll.c did not build): no ceiling" >&2
fi
[ -n "$systems" ] || { echo "$0: no server to run" >&2; exit 1; }

# Starts server $1 on port $2 (srv_pid) and waits until it listens.
start_server() {
	local sys=$1 port=$2
	if [ "$sys" = troupe ]; then
		"${troupe_cmd[@]}" -p "$port" >"$tmp/server.log" 2>&1 &
	elif [ "$sys" = epoll ]; then
		"$tmp/echo_epoll" "$port" >"$tmp/server.log" 2>&1 &
	else
		# shellcheck disable=SC2086 # ERL_OPTS is a list of options
		erl -noshell $erl_opts -pa "$tmp" \
		    -eval "echo_server:main(['$port'])." >"$tmp/server.log" 2>&1 &
	fi
	srv_pid=$!
	for _ in $(seq 200); do
		port_has "$port" 0A && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "  $sys: the server did not listen on $port:" >&2
	sed 's/^/    /' "$tmp/server.log" >&2
	stop_server
	return 1
}

# One run of server $1 at $2 connections, $3 active: sets rate, p50, p99,
# and cpu, the server's CPU time per round trip in us (over the whole
# run, connecting included).
one_run() {
	local sys=$1 c=$2 a=$3 port out t0 t1
	port=$(pick_port) || { echo "  no free port" >&2; return 1; }
	start_server "$sys" "$port" || return 1
	t0=$(cpu_ticks "$srv_pid")
	# shellcheck disable=SC2086 # LOAD_OPTS is a list of options
	out=$("$load" -c "$c" -a "$a" -n "$n" $load_opts "127.0.0.1:$port")
	local st=$?
	t1=$(cpu_ticks "$srv_pid")
	cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" -v r="$n" \
	    'BEGIN { if (a == "" || b == "") print "-"
	             else printf "%.2f\n", (b - a) / hz * 1e6 / r }')
	stop_server
	if [ $st -ne 0 ]; then
		echo "  $sys: the server's output:" >&2
		tail -n 20 "$tmp/server.log" | sed 's/^/    /' >&2
		return 1
	fi
	rate=$(awk '$1 == "echo" && $NF == "ops/s" { print $(NF - 1) }' <<<"$out")
	p50=$(awk '$1 == "echo-latency" { print $3 }' <<<"$out")
	p99=$(awk '$1 == "echo-latency" { print $6 }' <<<"$out")
	[ -n "$rate" ] && [ -n "$p50" ] && [ -n "$p99" ]
}

hard=$(ulimit -Hn)
declare -A med
ran="" failures=0
for cfg in $configs; do
	c=${cfg%%:*} a=${cfg#*:}
	need=$((c + 200))
	if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
		echo "note: -c $c needs $need open files, above ulimit -Hn ($hard): skipped" >&2
		continue
	fi
	soft=$(ulimit -Sn)
	if [ "$soft" != unlimited ] && [ "$soft" -lt "$need" ]; then
		ulimit -Sn "$hard" || { echo "$0: cannot raise ulimit -n to $hard" >&2; exit 1; }
	fi
	ran+=" $cfg"
	declare -A runs=()
	for ((i = 1; i <= k; i++)); do
		for sys in $systems; do
			if one_run "$sys" "$c" "$a"; then
				runs[$sys,rate]+="$rate"$'\n'
				runs[$sys,p50]+="$p50"$'\n'
				runs[$sys,p99]+="$p99"$'\n'
				runs[$sys,cpu]+="$cpu"$'\n'
				echo "  $sys -c $c -a $a: run $i: $rate round trips/s," \
				    "p50 $p50 us, p99 $p99 us, server CPU $cpu us a trip" >&2
			else
				echo "  $sys -c $c -a $a: run $i FAILED" >&2
				failures=$((failures + 1))
			fi
		done
	done
	for sys in troupe erlang epoll; do
		for m in rate p50 p99 cpu; do
			med[$cfg,$sys,$m]=$(printf '%s' "${runs[$sys,$m]:-}" | grep . | median)
		done
	done
	unset runs
done
[ -n "$ran" ] || { echo "$0: no configuration could run" >&2; exit 1; }

echo
echo "medians of $k runs of $n round trips of 64 bytes; ratios: round trips/s"
echo "troupe / erlang, latencies and CPU time erlang / troupe, so above 1x"
echo "troupe is ahead; CPU: the server's user + system time a round trip;"
echo "ceiling: one epoll thread in plain C (peers/echo_epoll.c)"
printf '%-15s %-14s %12s %12s %8s %12s\n' connections metric troupe erlang ratio ceiling
for cfg in $ran; do
	label="${cfg%%:*} (${cfg#*:} act)"
	for m in rate p50 p99 cpu; do
		t=${med[$cfg,troupe,$m]} e=${med[$cfg,erlang,$m]} c=${med[$cfg,epoll,$m]}
		case $m in
		rate) name="round trips/s" r=$(ratio "$t" "$e") ;;
		cpu) name="CPU us/trip" r=$(ratio "$e" "$t") ;;
		*) name="$m us" r=$(ratio "$e" "$t") ;;
		esac
		printf '%-15s %-14s %12s %12s %8s %12s\n' "$label" "$name" "$t" "$e" "$r" "$c"
		label=""
	done
done
if [ "$failures" -gt 0 ]; then
	echo "$failures runs FAILED (see above)" >&2
	exit 1
fi
