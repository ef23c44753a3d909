#!/usr/bin/env bash
# troupe-echo (samples/sockets/echo.c) against clients troupe did not
# write: OpenBSD netcat, socat and openssl s_client.
#
#   test_echo_clients.sh TROUPE_ECHO
#
# Each part starts the real troupe-echo on port 0 of 127.0.0.1 (or an ipc
# path in a temporary directory), reads the URL it prints, drives it, then
# sends it SIGTERM and wants exit status 0 and nothing on its stderr:
#
#   1. tcp://, raw: lines and a 1 MiB random file through nc, byte for
#      byte; 200 socat connections open at once, each echoing a payload of
#      its own; what a client that half-closes at once gets back.
#   2. tcp://, line mode (-l): lines split across writes come back whole,
#      a partial line is not echoed, a line over max_packet ends its
#      connection and not the server.
#   3. ipc://: socat's UNIX-CONNECT, one large payload and 20 at once.
#   4. tls+tcp://, with a CA, a server and a client certificate made here
#      by openssl: s_client verifies the server against the CA and gets its
#      echo, and is refused when verifying against another CA; a plain TCP
#      client gets no echo and leaves the server serving. Again with --ca:
#      a client with a certificate of the CA is served, one without a
#      certificate or with one of another CA is not.
#
# A check that what came back equals what was sent must hold for any
# full-duplex echo server, so a client ends its side only once it has read
# back as many bytes as it sent (nc and s_client: their input ends when
# their output has grown to that size; socat: readbytes= and shut-none
# on its socket, so that it sends its FIN after the last echo). Every
# client runs under timeout(1); the server and every other child are
# killed and reaped on any exit.
set -uo pipefail

echo_bin=${1:?usage: $0 TROUPE_ECHO}
for tool in nc socat openssl timeout; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed" >&2
		exit 1
	}
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-echo-clients.XXXXXX")
srv_pid=""
srv_name=""

fail() {
	echo "FAIL: $*" >&2
	if [ -n "$srv_name" ] && [ -s "$tmp/$srv_name.err" ]; then
		echo "--- troupe-echo's stderr:" >&2
		head -c 20000 "$tmp/$srv_name.err" >&2
	fi
	exit 1
}

# Every descendant of process $1.
tree() {
	local p
	for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$p"
		tree "$p"
	done
}

cleanup() {
	local rc=$?
	trap - EXIT
	local kids
	kids=$(tree $$)
	# shellcheck disable=SC2086
	[ -n "$kids" ] && kill -KILL $kids 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Whether process $1 runs (a zombie does not).
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

size() { stat -c %s "$1"; }

# ---- the server -------------------------------------------------------------

# srv_start NAME ARGS...: troupe-echo ARGS in the background; sets url
# (what it printed) and port.
srv_start() {
	srv_name=$1
	shift
	: >"$tmp/$srv_name.out"
	: >"$tmp/$srv_name.err"
	"$echo_bin" "$@" >"$tmp/$srv_name.out" 2>"$tmp/$srv_name.err" &
	srv_pid=$!
	url=""
	local i
	for ((i = 0; i < 300; i++)); do
		url=$(sed -n 's/^troupe-echo listening on //p' "$tmp/$srv_name.out")
		[ -n "$url" ] && break
		alive "$srv_pid" || fail "$srv_name: troupe-echo $* exited"
		sleep 0.1
	done
	[ -n "$url" ] || fail "$srv_name: troupe-echo printed no URL in 30 s"
	port=${url##*:}
	echo "$srv_name: troupe-echo $* listening on $url"
}

# The server still runs.
srv_alive() {
	alive "$srv_pid" || fail "$srv_name: troupe-echo is gone ($1)"
}

# SIGTERM: it must exit 0 within 30 s, its stderr empty.
srv_stop() {
	srv_alive "before SIGTERM"
	kill -TERM "$srv_pid"
	local i
	for ((i = 0; i < 300; i++)); do
		alive "$srv_pid" || break
		sleep 0.1
	done
	alive "$srv_pid" && fail "$srv_name: still running 30 s after SIGTERM"
	wait "$srv_pid"
	local rc=$?
	srv_pid=""
	[ "$rc" -eq 0 ] || fail "$srv_name: exit status $rc after SIGTERM"
	[ -s "$tmp/$srv_name.err" ] && fail "$srv_name: wrote to stderr"
	echo "$srv_name: exited 0 on SIGTERM"
	srv_name=""
}

# ---- clients ----------------------------------------------------------------

# through IN OUT CLIENT...: IN into CLIENT's input, its output into OUT;
# the input ends once OUT holds as many bytes as IN, or the client has
# exited. The client's exit status.
through() {
	local in=$1 out=$2 fifo=$tmp/through.fifo
	shift 2
	: >"$out"
	rm -f "$fifo"
	mkfifo "$fifo"
	timeout 90 "$@" <"$fifo" >"$out" 2>>"$tmp/clients.err" &
	local c=$! n
	n=$(size "$in")
	{
		cat "$in"
		while alive "$c" && [ "$(size "$out")" -lt "$n" ]; do
			sleep 0.05
		done
	} >"$fifo"
	wait "$c"
}

# same NAME SENT GOT: the echo is what was sent, byte for byte.
same() {
	cmp -s "$2" "$3" ||
		fail "$1: sent $(size "$2") bytes, got back $(size "$3") that differ ($(cmp "$2" "$3" 2>&1 | head -n 1))"
}

# Established TCP connections to 127.0.0.1:$1, counted at the clients'
# end (/proc/net/tcp: remote address, state 01).
conns_to() {
	awk -v p="$(printf '0100007F:%04X' "$1")" \
		'$3 == p && $4 == "01" { n++ } END { print n + 0 }' /proc/net/tcp
}

random_file() { # FILE BYTES
	head -c "$2" /dev/urandom >"$1"
}

# ---- 1. tcp://, raw ---------------------------------------------------------

srv_start raw -p 0

printf 'hello\nworld\n\nand a line with\ttabs and \\ backslashes\n' >"$tmp/lines"
through "$tmp/lines" "$tmp/lines.got" nc -N 127.0.0.1 "$port" ||
	fail "nc (lines) exited $?"
same "nc, lines" "$tmp/lines" "$tmp/lines.got"

random_file "$tmp/big" 1048576
through "$tmp/big" "$tmp/big.got" nc -N 127.0.0.1 "$port" ||
	fail "nc (1 MiB) exited $?"
same "nc, 1 MiB" "$tmp/big" "$tmp/big.got"
echo "raw: nc echoed lines and 1 MiB of random bytes"

# A client that half-closes as soon as its input ends (nc -N, with
# nothing to hold its input open): the socket layer closes the connection
# on the peer's FIN, so echoes not yet written may be lost, the more so
# when the client reads slowly (the last three runs). What comes back must
# still be a prefix of what was sent; how much is only logged.
short=0
for i in 1 2 3 4 5 6; do
	if [ "$i" -le 3 ]; then
		timeout 90 nc -N 127.0.0.1 "$port" <"$tmp/big" >"$tmp/half.got" \
			2>>"$tmp/clients.err"
	else
		timeout 90 nc -N 127.0.0.1 "$port" <"$tmp/big" 2>>"$tmp/clients.err" |
			{ sleep 0.5; cat; } >"$tmp/half.got"
	fi || fail "nc -N (half-close) exited $?"
	n=$(size "$tmp/half.got")
	cmp -s -n "$n" "$tmp/big" "$tmp/half.got" ||
		fail "half-close: the $n bytes that came back are not what was sent"
	[ "$n" -lt 1048576 ] && short=$((short + 1))
	echo "raw: half-close at once, run $i: $n of 1048576 bytes came back"
done
echo "raw: half-close at once: $short of 6 runs short"

# 200 socat connections open at once. Each connects, then waits for its
# payload on a FIFO of its own, released once all 200 are established.
n=200
declare -a cl
for ((i = 0; i < n; i++)); do
	{
		printf 'connection %d of %d\n' "$i" "$n"
		head -c $((1 + (i * 7919) % 20000)) /dev/urandom
	} >"$tmp/c$i.in"
	mkfifo "$tmp/c$i.fifo"
	timeout 90 socat -t 90 \
		"TCP:127.0.0.1:$port,shut-none,readbytes=$(size "$tmp/c$i.in")" \
		"OPEN:$tmp/c$i.fifo!!CREATE:$tmp/c$i.got" 2>>"$tmp/clients.err" &
	cl[i]=$!
done
for ((k = 0; k < 300; k++)); do
	[ "$(conns_to "$port")" -ge "$n" ] && break
	sleep 0.1
done
open=$(conns_to "$port")
[ "$open" -ge "$n" ] || fail "socat: $open of $n connections established"
declare -a wr
for ((i = 0; i < n; i++)); do
	cat "$tmp/c$i.in" >"$tmp/c$i.fifo" &
	wr[i]=$!
done
bad=0
for ((i = 0; i < n; i++)); do
	wait "${cl[i]}" || bad=$((bad + 1))
done
wait "${wr[@]}"
[ "$bad" -eq 0 ] || fail "socat: $bad of $n clients failed"
for ((i = 0; i < n; i++)); do
	same "socat connection $i" "$tmp/c$i.in" "$tmp/c$i.got"
done
echo "raw: $n socat connections at once, each echoed its own payload"
srv_stop

# ---- 2. tcp://, line mode ---------------------------------------------------

srv_start line -l -p 0

# One connection driven a piece at a time: a line comes back only once
# its '\n' has been sent, whole, however it was split.
coproc LC { timeout 60 socat - "TCP:127.0.0.1:$port,nodelay" 2>>"$tmp/clients.err"; }
lc_pid=$LC_PID
lc_in=${LC[1]}
lc_out=${LC[0]}
expect_line() { # WANT
	local got=""
	IFS= read -r -t 20 got <&"$lc_out" ||
		fail "line mode: no line back (wanted \"$1\", have \"$got\")"
	[ "$got" = "$1" ] || fail "line mode: got \"$got\", wanted \"$1\""
}
expect_nothing() {
	local got=""
	if IFS= read -r -t 0.5 got <&"$lc_out" || [ -n "$got" ]; then
		fail "line mode: \"$got\" came back before its newline"
	fi
}
printf 'hel' >&"$lc_in"
expect_nothing
printf 'lo\nwor' >&"$lc_in"
expect_line hello
expect_nothing
printf 'ld\n' >&"$lc_in"
expect_line world
printf 'one\ntwo\nthree\npartial' >&"$lc_in"
expect_line one
expect_line two
expect_line three
expect_nothing
printf ' and done\n' >&"$lc_in"
expect_line "partial and done"
exec {lc_in}>&-
wait "$lc_pid" || fail "line mode: socat exited $?"
exec {lc_out}<&-

# Many lines of every length up to 200 KB, in 61-byte writes (socat -b,
# TCP_NODELAY): what comes back is the whole stream.
awk 'BEGIN {
	srand(7)
	for (i = 0; i < 3000; i++) {
		n = int(rand() * (i % 100 == 0 ? 200000 : 300))
		s = sprintf("%d:", i)
		while (length(s) < n)
			s = s sprintf("%c", 32 + int(rand() * 95))
		print s
	}
}' >"$tmp/text"
through "$tmp/text" "$tmp/text.got" socat -b 61 - \
	"TCP:127.0.0.1:$port,nodelay" || fail "socat (lines) exited $?"
same "line mode, socat -b 61" "$tmp/text" "$tmp/text.got"
through "$tmp/text" "$tmp/text.got" nc -N 127.0.0.1 "$port" ||
	fail "nc (lines) exited $?"
same "line mode, nc" "$tmp/text" "$tmp/text.got"
echo "line: $(wc -l <"$tmp/text") lines ($(size "$tmp/text") bytes) through socat in 61-byte writes and through nc"

# A partial line at the end is not echoed: the complete ones are.
printf 'first\nsecond\nno newline' >"$tmp/partial"
timeout 30 socat -t 30 "TCP:127.0.0.1:$port,shut-none,readbytes=13" \
	"OPEN:$tmp/partial!!CREATE:$tmp/partial.got" 2>>"$tmp/clients.err" ||
	fail "socat (partial line) exited $?"
[ "$(cat "$tmp/partial.got")" = "$(printf 'first\nsecond')" ] ||
	fail "partial line: got \"$(cat "$tmp/partial.got")\""
printf 'tail with no newline' | timeout 30 nc -N 127.0.0.1 "$port" \
	>"$tmp/partial.got" 2>>"$tmp/clients.err" || fail "nc (partial) exited $?"
[ -s "$tmp/partial.got" ] && fail "partial line: echoed before its newline"

# A line longer than max_packet (1 MiB): its connection ends with nothing
# echoed, and the server goes on.
head -c 1100000 /dev/zero | tr '\0' x >"$tmp/long"
timeout 60 socat -t 60 "TCP:127.0.0.1:$port,shut-none" \
	"OPEN:$tmp/long!!CREATE:$tmp/long.got" 2>>"$tmp/clients.err"
[ -s "$tmp/long.got" ] && fail "a line over max_packet was echoed"
srv_alive "after a line over max_packet"
through "$tmp/lines" "$tmp/lines.got" nc -N 127.0.0.1 "$port" ||
	fail "nc after the long line exited $?"
same "line mode after a long line" "$tmp/lines" "$tmp/lines.got"
echo "line: partial lines held back, a line over 1 MiB closed its connection only"
srv_stop

# ---- 3. ipc:// --------------------------------------------------------------

srv_start ipc -u "ipc://$tmp/echo.sock"
[ -S "$tmp/echo.sock" ] || fail "ipc: no socket at $tmp/echo.sock"
random_file "$tmp/ipc.in" 524288
timeout 60 socat -t 60 \
	"UNIX-CONNECT:$tmp/echo.sock,shut-none,readbytes=524288" \
	"OPEN:$tmp/ipc.in!!CREATE:$tmp/ipc.got" 2>>"$tmp/clients.err" ||
	fail "socat UNIX-CONNECT exited $?"
same "ipc, 512 KiB" "$tmp/ipc.in" "$tmp/ipc.got"
unset cl
declare -a cl
for ((i = 0; i < 20; i++)); do
	random_file "$tmp/u$i.in" $((1000 + i * 3001))
	timeout 60 socat -t 60 \
		"UNIX-CONNECT:$tmp/echo.sock,shut-none,readbytes=$(size "$tmp/u$i.in")" \
		"OPEN:$tmp/u$i.in!!CREATE:$tmp/u$i.got" 2>>"$tmp/clients.err" &
	cl[i]=$!
done
for ((i = 0; i < 20; i++)); do
	wait "${cl[i]}" || fail "socat UNIX-CONNECT $i exited $?"
	same "ipc connection $i" "$tmp/u$i.in" "$tmp/u$i.got"
done
echo "ipc: socat UNIX-CONNECT echoed 512 KiB, and 20 connections at once"
srv_stop

# ---- 4. tls+tcp:// ----------------------------------------------------------

pki=$tmp/pki
mkdir "$pki"
(
	cd "$pki" || exit 1
	set -e
	key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
	ca() { # NAME
		key "$1"
		openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 \
			-subj "/CN=troupe test $1" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign
	}
	leaf() { # NAME CA CN EXTENSIONS
		key "$1"
		openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$3"
		printf '%s\n' "basicConstraints=CA:FALSE" "$4" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
			-CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext"
	}
	ca ca
	ca other
	leaf server ca 127.0.0.1 \
		"subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
	leaf client ca "troupe test client" extendedKeyUsage=clientAuth
	leaf rogue other "troupe test rogue" extendedKeyUsage=clientAuth
) >"$tmp/pki.log" 2>&1 || { cat "$tmp/pki.log"; fail "openssl could not make the certificates"; }

random_file "$tmp/tls.in" 262144

# s_client, verifying the server against CAFILE and its address (the
# certificate's IP SAN), sends tls.in; what comes back is in tls.got.
s_client() { # CAFILE EXTRA...
	local cafile=$1
	shift
	through "$tmp/tls.in" "$tmp/tls.got" openssl s_client \
		-connect "127.0.0.1:$port" -CAfile "$cafile" -verify_return_error \
		-verify_ip 127.0.0.1 -quiet -no_ign_eof -nocommands "$@"
}

# A client that speaks plain TCP to the TLS port gets no echo, and the
# server is none the worse.
plain_on_tls() {
	printf 'plain text, not a ClientHello\r\n\r\n' >"$tmp/plain"
	timeout 30 socat -t 5 "TCP:127.0.0.1:$port" \
		"OPEN:$tmp/plain!!CREATE:$tmp/plain.got" 2>>"$tmp/clients.err"
	grep -q 'plain text' "$tmp/plain.got" &&
		fail "tls: a plain TCP client got its bytes back"
	srv_alive "after a plain TCP client on the TLS port"
}

srv_start tls -u tls+tcp://127.0.0.1:0 --cert "$pki/server.pem" \
	--key "$pki/server.key"
[[ $url == tls+tcp://127.0.0.1:* ]] || fail "tls: listening on $url"
s_client "$pki/ca.pem" || fail "tls: s_client exited $? (verification?)"
same "tls" "$tmp/tls.in" "$tmp/tls.got"
s_client "$pki/other.pem" && fail "tls: verified against a CA that did not sign"
[ -s "$tmp/tls.got" ] && fail "tls: echoed to a client that refused the server"
plain_on_tls
s_client "$pki/ca.pem" || fail "tls: s_client after the plain client exited $?"
same "tls after a plain client" "$tmp/tls.in" "$tmp/tls.got"
echo "tls: s_client verified the server and got 256 KiB back; another CA refused; plain TCP got nothing"
srv_stop

srv_start mtls -u tls+tcp://127.0.0.1:0 --cert "$pki/server.pem" \
	--key "$pki/server.key" --ca "$pki/ca.pem"
s_client "$pki/ca.pem" -cert "$pki/client.pem" -key "$pki/client.key" ||
	fail "mtls: s_client with the client certificate exited $?"
same "mtls" "$tmp/tls.in" "$tmp/tls.got"
s_client "$pki/ca.pem" && fail "mtls: s_client without a certificate succeeded"
[ -s "$tmp/tls.got" ] && fail "mtls: echoed to a client without a certificate"
s_client "$pki/ca.pem" -cert "$pki/rogue.pem" -key "$pki/rogue.key" &&
	fail "mtls: s_client with another CA's certificate succeeded"
[ -s "$tmp/tls.got" ] && fail "mtls: echoed to a client of another CA"
plain_on_tls
s_client "$pki/ca.pem" -cert "$pki/client.pem" -key "$pki/client.key" ||
	fail "mtls: s_client after the refused ones exited $?"
same "mtls after refusals" "$tmp/tls.in" "$tmp/tls.got"
echo "mtls: the CA's client served; none, another CA's and plain TCP refused"
srv_stop

echo "PASS"
