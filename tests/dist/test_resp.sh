#!/usr/bin/env bash
# troupe-resp under real clients: redis-cli (commands, errors, a pipe of
# 10,000 requests), nc with inline commands, raw sockets (a pipelined
# batch split in odd places, a protocol error, QUIT, a client that sends
# without reading), redis-benchmark, and a client that shuts its write
# side after its requests. Then SIGTERM: the server exits 0 and nothing
# is left running.
#
#   test_resp.sh TROUPE_RESP
#
# The server listens on port 0 of 127.0.0.1 (the system picks a free
# one, which it prints). Every client runs under a timeout, and the
# server is killed and reaped on any exit.
set -uo pipefail

server="${1:?usage: $0 TROUPE_RESP}"
tmp=$(mktemp -d) || exit 1
srv_pid=""

cleanup() {
	if [ -n "$srv_pid" ]; then
		kill -9 "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	local j
	for j in $(jobs -p); do
		kill -9 "$j" 2>/dev/null
		wait "$j" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*" >&2
	if [ -f "$tmp/server.log" ]; then
		echo "--- server output:" >&2
		tail -n 30 "$tmp/server.log" >&2
	fi
	exit 1
}

for tool in redis-cli redis-benchmark nc; do
	command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 0; }
done

# A sanitizer's quarantine would keep freed buffers and hide the bound
# the memory check below looks for.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"

"$server" -p 0 >"$tmp/server.log" 2>&1 &
srv_pid=$!
port=""
for _ in $(seq 300); do
	port=$(sed -n 's/^troupe-resp listening on tcp:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' \
		"$tmp/server.log")
	[ -n "$port" ] && break
	kill -0 "$srv_pid" 2>/dev/null || fail "the server exited at start"
	sleep 0.1
done
[ -n "$port" ] || fail "the server did not say where it listens"
echo "troupe-resp (pid $srv_pid) on port $port"

cli() {
	timeout 30 redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# expect WANT CMD...: the output of redis-cli CMD is WANT.
expect() {
	local want=$1 got
	shift
	got=$(cli "$@") || fail "redis-cli $* failed"
	[ "$got" = "$want" ] || fail "redis-cli $*: got [$got], want [$want]"
}

# ---- redis-cli ------------------------------------------------------------
expect PONG PING
expect hello PING hello
expect OK SET greeting "hello world"
expect "hello world" GET greeting
expect "" GET nothing
expect 1 EXISTS greeting
expect 2 EXISTS greeting greeting
expect 0 EXISTS nothing
expect 1 INCR counter
expect 11 INCRBY counter 10
expect 10 DECR counter
expect 5 DECRBY counter 5
expect "ERR value is not an integer or out of range" INCR greeting
expect OK MSET k1 v1 k2 v2 k3 v3
expect $'v1\nv2\n\nv3' MGET k1 k2 nothing k3
expect 2 DEL k1 k2 nothing
expect 0 DEL k1
expect 1 DEL k3
expect "" SET greeting x NX
expect OK SET greeting y XX
expect y GET greeting
expect "ERR syntax error" SET greeting y NX XX
# A key with a time to live: there at once (both requests on one
# connection), gone after it.
got=$(printf 'SET brief z PX 1000\r\nGET brief\r\nQUIT\r\n' |
	timeout 10 nc 127.0.0.1 "$port" | tr -d '\r' | tr '\n' ' ')
[ "$got" = '+OK $1 z +OK ' ] || fail "SET PX: got [$got]"
sleep 1.2
expect "" GET brief
expect 0 EXISTS brief
expect 2 DBSIZE
expect $'save\n\nappendonly\nno' CONFIG GET save appendonly
expect "" COMMAND DOCS
expect "wrong" ECHO wrong
expect "ERR wrong number of arguments for 'get' command" GET
expect "ERR unknown command 'NOPE', with args beginning with: 'a' 'b' " NOPE a b
expect OK FLUSHALL
expect 0 DBSIZE

# A pipe of 10,000 requests: 5,000 SETs, then 5,000 INCRs of one key.
for ((i = 0; i < 5000; i++)); do
	printf '*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$%d\r\n%d\r\n' \
		$((4 + ${#i})) "$i" ${#i} "$i"
done >"$tmp/pipe"
for ((i = 0; i < 5000; i++)); do
	printf 'INCR hits\r\n'
done >>"$tmp/pipe"
out=$(timeout 60 redis-cli -h 127.0.0.1 -p "$port" --pipe <"$tmp/pipe" 2>&1) ||
	fail "redis-cli --pipe: $out"
grep -q 'errors: 0, replies: 10000' <<<"$out" || fail "redis-cli --pipe: $out"
expect 5000 GET hits
expect 4999 GET key:4999
expect 5001 DBSIZE

# ---- nc, inline commands --------------------------------------------------
# QUIT answers +OK, then the server closes (so nc ends); nothing after
# QUIT is answered.
got=$(printf 'SET a "one two"\r\nGET a\nPING\r\nQUIT\r\nPING\r\n' |
	timeout 10 nc 127.0.0.1 "$port" | od -An -c | tr -s ' \n' ' ')
want=$(printf '+OK\r\n$7\r\none two\r\n+PONG\r\n+OK\r\n' | od -An -c |
	tr -s ' \n' ' ')
[ "$got" = "$want" ] || fail "nc inline: got [$got], want [$want]"

# ---- raw sockets ----------------------------------------------------------
# A pipelined batch in pieces cut in odd places: mid-header, mid-bulk,
# between CR and LF, mid inline line.
batch=$'*3\r\n$3\r\nSET\r\n$2\r\nk9\r\n$5\r\nv\r\nv9\r\nGET k9\r\n*2\r\n$4\r\nINCR\r\n$4\r\nn:42\r\n*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\nPING\r\n'
reply=$'+OK\r\n$5\r\nv\r\nv9\r\n:1\r\n$3\r\nabc\r\n+PONG\r\n'
exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect"
for cut in 1 5 9 17 18 26 27 28 33 41 55 56 70 77 81 ${#batch}; do
	printf '%s' "${batch:${prev:-0}:$((cut - ${prev:-0}))}" >&3
	prev=$cut
	sleep 0.02
done
unset prev
got=$(timeout 10 head -c ${#reply} <&3 | od -An -c)
exec 3<&-
[ "$got" = "$(printf '%s' "$reply" | od -An -c)" ] ||
	fail "split batch: got [$got]"

# A protocol error: the replies before it, the error, then the close.
exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect"
printf 'PING\r\n*1\r\n$x\r\n' >&3
got=$(timeout 10 cat <&3) || fail "the server kept the connection open"
exec 3<&-
[ "$got" = $'+PONG\r\n-ERR Protocol error: invalid bulk length\r' ] ||
	fail "protocol error: got [$got]"

# A client that sends 100,000 GETs of a 1 KiB value without reading: the
# server stops reading at its bound and holds a few MB, not the 100 MB of
# replies; then every reply comes once the client reads.
value=$(head -c 1024 /dev/zero | tr '\0' v)
expect OK SET big "$value"
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$srv_pid/status"; }
rss0=$(rss)
n=100000
exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect"
(for ((i = 0; i < n / 1000; i++)); do
	printf 'GET big\r\n%.0s' $(seq 1000)
done >&3) &
writer=$!
sleep 2
rss1=$(rss)
echo "server RSS ${rss0} kB, with 100 MB of replies not read: ${rss1} kB"
[ $((rss1 - rss0)) -lt 65536 ] || fail "the server grew by $((rss1 - rss0)) kB"
got=$(timeout 120 head -c $((n * 1033)) <&3 | tr -d 'v\r' | grep -c '^\$1024$')
wait "$writer"
exec 3<&-
[ "$got" = "$n" ] || fail "unread replies: $got of $n"

# ---- redis-benchmark ------------------------------------------------------
out=$(timeout 120 redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -c 20 \
	-P 16 -t set,get,incr -q 2>&1) || fail "redis-benchmark: $out"
echo "$out" | tr '\r' '\n' | grep 'requests per second'
for t in SET GET INCR; do
	rate=$(echo "$out" | tr '\r' '\n' |
		sed -n "s/^$t: \([0-9.]*\) requests per second.*/\1/p")
	awk -v r="${rate:-0}" 'BEGIN { exit !(r > 0) }' ||
		fail "redis-benchmark: no rate for $t: $out"
done
if echo "$out" | grep -Eqi 'error|warning'; then
	fail "redis-benchmark: $out"
fi

# ---- half-close -----------------------------------------------------------
# The client sends its requests, then shuts its write side (nc -N): it
# still gets every reply before the server closes. The end often arrives
# before the replies are made (INCR's comes from a shard), so a server
# that closed at the end would lose some of these.
want=$(printf '+PONG\r\n$1\r\nx\r\n:1\r\n' | od -An -c)
for ((i = 0; i < 20; i++)); do
	got=$(printf 'PING\r\nECHO x\r\nINCR hc%d\r\n' "$i" |
		timeout 10 nc -N 127.0.0.1 "$port" | od -An -c)
	[ "$got" = "$want" ] || fail "half-close, round $i: got [$got]"
done
# Many requests, then the end at once: every reply still comes.
for ((i = 0; i < 2000; i++)); do
	printf 'INCR hc\r\n'
done >"$tmp/hc"
for ((i = 1; i <= 3; i++)); do
	got=$(timeout 20 nc -N 127.0.0.1 "$port" <"$tmp/hc" | tr -d '\r' |
		tail -n 1)
	[ "$got" = ":$((i * 2000))" ] ||
		fail "half-close of 2000 requests: last reply [$got]"
done

# ---- SIGTERM --------------------------------------------------------------
kill -TERM "$srv_pid"
for _ in $(seq 300); do
	kill -0 "$srv_pid" 2>/dev/null || break
	sleep 0.1
done
wait "$srv_pid"
st=$?
srv_pid=""
[ "$st" -eq 0 ] || fail "the server exited with status $st"
[ -z "$(jobs -p)" ] || fail "left running: $(jobs -p)"
grep -Ei 'crash|error' "$tmp/server.log" && fail "the server logged errors"
echo "PASS"
