# shellcheck shell=bash
# Helpers of the comparisons that run a server against a peer under one
# client (echo_compare.sh, resp_compare.sh), sourced by them: stopping the
# server of the run (its pid in `srv_pid`), picking a free port, the
# server's CPU time, medians and ratios.

# Stops the server of the run, if any (srv_pid), and forgets it.
stop_server() {
	[ -n "$srv_pid" ] || return 0
	kill "$srv_pid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$srv_pid" 2>/dev/null
	wait "$srv_pid" 2>/dev/null
	srv_pid=""
}

# Whether a TCP socket of any address has local port $1, in state $2 (hex,
# 0A is LISTEN) or in any state: /proc/net/tcp's second column is the
# local address, ending in the port in hex, its fourth the state.
port_has() {
	awk -v p="$(printf ':%04X' "$1")" -v st="${2:-}" '
		FNR > 1 && substr($2, length($2) - 4) == p &&
		    (st == "" || $4 == st) { found = 1 }
		END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A free port below the ephemeral range, so that no client's connection
# can be holding it when the server binds.
pick_port() {
	local low port
	low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ -n "$low" ] && [ "$low" -gt 11000 ] || low=32768
	for _ in $(seq 100); do
		port=$((10000 + RANDOM % (low - 10000)))
		port_has "$port" || { echo "$port"; return 0; }
	done
	return 1
}

# The CPU time of process $1 so far, in clock ticks (user + system).
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}

# The median of numbers on stdin, one a line ("-" when there are none).
median() {
	sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'
}

# ratio A B: A / B to two decimals, or "-" when either is missing.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) print "-"
		else printf "%.2fx\n", a / b }'
}
