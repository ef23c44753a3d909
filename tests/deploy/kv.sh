# troupe-kv nodes for the deploy tests (sourced after common.sh; bash).
# The caller sets $kv (the program) and $kv_dir (a directory of its own,
# which it removes), and calls kv_kill_all from its EXIT trap.
#
#   kv_ports N        sets the array $ports to N free TCP ports of
#                     127.0.0.1 (bound by the system, then let go)
#   kv_start NAME [ENV=VALUE...] [-- FLAG...]
#                     starts troupe-kv as node NAME (--name NAME and the
#                     FLAGs) in an environment with the ENV settings
#                     added, its stdout and stderr in $kv_dir/NAME.log;
#                     its pid in ${kv_pid[NAME]}
#   kv_lines NAME     the lines of NAME's log so far
#   kv_wait NAME SECONDS REGEX [FROM]
#                     waits up to SECONDS for a line of NAME's log after
#                     line FROM (default 0) that matches REGEX (grep -E);
#                     prints it; status 1 if none came, or if the node
#                     exited first
#   kv_stop NAME      SIGTERM, then waits up to 30 s for the node to exit
#                     (else SIGKILL and fail); its exit status in
#                     $kv_status
#   kv_kill_all       SIGKILL to every node still running, and waits

declare -A kv_pid=()
kv_status=

kv_ports() {
	local out
	out=$("${python:-python3}" -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1") || fail "no free ports"
	read -r -a ports <<<"$out"
}

kv_start() {
	local name=$1 envs=() flags=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	[ "${1:-}" = -- ] && shift
	flags=("$@")
	env "${envs[@]}" "$kv" --name "$name" "${flags[@]}" >>"$kv_dir/$name.log" 2>&1 &
	kv_pid[$name]=$!
}

kv_lines() {
	if [ -f "$kv_dir/$1.log" ]; then wc -l <"$kv_dir/$1.log"; else echo 0; fi
}

kv_wait() {
	local name=$1 secs=$2 re=$3 from=${4:-0} line end=$((SECONDS + $2))
	while :; do
		line=$(tail -n "+$((from + 1))" "$kv_dir/$name.log" 2>/dev/null | grep -E -m1 -e "$re")
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		if [ -n "${kv_pid[$name]:-}" ] && ! kill -0 "${kv_pid[$name]}" 2>/dev/null; then
			echo "$name exited before a line matching '$re'" >&2
			return 1
		fi
		[ $SECONDS -ge $end ] && break
		sleep 0.05
	done
	echo "$name: no line matching '$re' within $secs s" >&2
	return 1
}

kv_stop() {
	local name=$1 p=${kv_pid[$1]:-} i
	[ -n "$p" ] || fail "kv_stop $name: no such node"
	kill -TERM "$p" 2>/dev/null
	for ((i = 0; i < 600; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$p" 2>/dev/null; then
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
		unset "kv_pid[$name]"
		fail "$name did not exit within 30 s of SIGTERM"
	fi
	wait "$p"
	kv_status=$?
	unset "kv_pid[$name]"
}

kv_kill_all() {
	local n
	for n in "${!kv_pid[@]}"; do
		kill -KILL "${kv_pid[$n]}" 2>/dev/null
		wait "${kv_pid[$n]}" 2>/dev/null
	done
	kv_pid=()
}
