# troupe-kv clusters on 127.0.0.1 for scripts (demo.sh, the tests):
# source it, then
#
#   kv_cluster_init DIR PROGRAM   ports the system picks, a fresh cookie
#   kv_start I [FLAGS...]         starts node nI (I = 1, 2, 3)
#   kv_wait_line I SECS RE [FROM] waits for a line of nI's log matching RE
#                                 after line FROM; prints it
#   kv_lines I                    lines in nI's log so far
#   kv_stop_all                   SIGTERM, then SIGKILL, to every node
#
# Node nI listens for nodes on kv_node_port I, the Redis protocol on
# kv_resp_port I, the observer on kv_obs_port I and the client endpoint
# on kv_client_port I; its output goes to DIR/nI.log; its pid is
# ${kv_pid[I]}.

kv_py=/usr/bin/python3
declare -A kv_pid=()

kv_cluster_init() {
	kv_dir=$1
	kv_prog=$2
	read -r -a kv_ports <<< "$("$kv_py" -c '
import socket
ss = [socket.socket() for _ in range(12)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
	openssl rand -hex 32 > "$kv_dir/cookie"
	chmod 600 "$kv_dir/cookie"
	kv_seeds="tcp://127.0.0.1:$(kv_node_port 1),tcp://127.0.0.1:$(kv_node_port 2),tcp://127.0.0.1:$(kv_node_port 3)"
}

kv_node_port() { echo "${kv_ports[$(($1 - 1))]}"; }
kv_resp_port() { echo "${kv_ports[$(($1 + 2))]}"; }
kv_obs_port() { echo "${kv_ports[$(($1 + 5))]}"; }
kv_client_port() { echo "${kv_ports[$(($1 + 8))]}"; }

kv_start() {
	local i=$1
	shift
	TROUPE_COOKIE_FILE=$kv_dir/cookie TROUPE_SEEDS=$kv_seeds "$kv_prog" \
		--name "n$i" \
		--listen "tcp://127.0.0.1:$(kv_node_port "$i")" \
		--resp "127.0.0.1:$(kv_resp_port "$i")" \
		--observer "127.0.0.1:$(kv_obs_port "$i")" \
		--client "tcp://127.0.0.1:$(kv_client_port "$i")" \
		--schedulers 1 "$@" >> "$kv_dir/n$i.log" 2>&1 &
	kv_pid[$i]=$!
}

kv_lines() { wc -l < "$kv_dir/n$1.log"; }

kv_wait_line() {
	local i=$1 secs=$2 re=$3 from=${4:-0} line
	for _ in $(seq $((secs * 20))); do
		line=$(tail -n "+$((from + 1))" "$kv_dir/n$i.log" 2> /dev/null | grep -E -m1 "$re")
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

kv_stop_all() {
	local p
	for p in "${kv_pid[@]}"; do kill -TERM "$p" 2> /dev/null; done
	for p in "${kv_pid[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2> /dev/null
		wait "$p" 2> /dev/null
	done
	kv_pid=()
}

# The observer's token for the cookie (docs/observer.md).
kv_token() {
	"$kv_py" -c '
import hashlib, hmac, sys
ck = open(sys.argv[1], "rb").read().rstrip(b"\n")
prk = hmac.new(b"\0" * 32, ck, hashlib.sha256).digest()
print(hmac.new(prk, b"troupe observer token v1\x01", hashlib.sha256).hexdigest())' "$kv_dir/cookie"
}
