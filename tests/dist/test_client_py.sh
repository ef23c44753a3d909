#!/usr/bin/env bash
# The Python client of the client endpoint (samples/kv/client) against
# test nodes (node_main.c with --client): echo calls over tcp:// and
# ipc://, the refusals of a wrong cookie, a wrong node and a missing
# actor, 200 calls in a row on one connection, calls across two restarts
# of the node (reconnecting), a request refused as busy and retried, and
# a broken connection and late replies on a fake endpoint. Then
# kv_client.py: its RESP encoding and parsing (no kv service needed), and
# its load mode's error counting, fail-over and giving up on a node
# killed under it.
#
#   test_client_py.sh TROUPE_TEST_NODE SOURCE_DIR
#
# It uses Debian's /usr/bin/python3 with python3-protobuf, and protoc:
# without them it says SKIP and exits 77. Nodes bind 127.0.0.1 and a
# temporary directory only; every Python run is under a timeout, and the
# nodes are killed and reaped on any exit.
set -uo pipefail

node_bin=${1:?usage: $0 TROUPE_TEST_NODE SOURCE_DIR}
src=${2:?usage: $0 TROUPE_TEST_NODE SOURCE_DIR}
PY=/usr/bin/python3

skip() {
	echo "SKIP: $*"
	exit 77
}
[ -x "$PY" ] || skip "no $PY"
"$PY" -c 'import google.protobuf' 2>/dev/null ||
	skip "$PY has no google.protobuf (Debian: apt-get install python3-protobuf)"
command -v protoc >/dev/null || skip "no protoc (Debian: protobuf-compiler)"

# ipc:// paths are limited to about 100 bytes: keep the directory short.
base=${TMPDIR:-/tmp}
[ ${#base} -lt 60 ] || base=/tmp
tmp=$(mktemp -d "$base/tcpy.XXXXXX") || exit 1
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	local f
	echo "FAIL: $*" >&2
	for f in "$tmp"/*.log; do
		[ -f "$f" ] || continue
		echo "--- $(basename "$f"):" >&2
		tail -n 30 "$f" >&2
	done
	exit 1
}

export PYTHONPATH="$src/samples/kv/client"
export TROUPE_PROTO_DIR="$src/proto"
export TROUPE_CLIENT_CACHE="$tmp/cache"
export PYTHONDONTWRITEBYTECODE=1

py() {
	timeout 60 "$PY" "$@"
}

COOKIE="py-test-$RANDOM-$RANDOM-$$"
printf '%s\n' "$COOKIE" >"$tmp/cookie"

# start_node NAME CLIENT-URL [options]: starts a node, waits (10 s at
# most) for its READY; its pid in $last_pid. Returns 1 if it does not
# get there.
last_pid=""
start_node() {
	local name=$1 url=$2
	shift 2
	"$node_bin" "$name" tcp://127.0.0.1:0 "$COOKIE" --client "$url" "$@" \
		>"$tmp/$name.log" 2>&1 &
	last_pid=$!
	pids+=("$last_pid")
	for _ in $(seq 100); do
		grep -q '^READY ' "$tmp/$name.log" && return 0
		kill -0 "$last_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	kill -9 "$last_pid" 2>/dev/null
	return 1
}

stop_node() {
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# wait_line FILE REGEX: waits (30 s at most) for a line of FILE.
wait_line() {
	for _ in $(seq 300); do
		grep -Eq "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- kv_client.py's RESP, and the key, without a node --------------------
py - <<'EOF' || fail "RESP encoding and parsing"
from kv_client import KV, KV_REPLY, KV_REQUEST, RespError, encode_command, \
    parse_reply

assert encode_command("SET", "k", "v") == \
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
assert encode_command(b"a\r\nb", 12, "\u00e9") == \
    b"*3\r\n$4\r\na\r\nb\r\n$2\r\n12\r\n$2\r\n\xc3\xa9\r\n"
assert encode_command("") == b"*1\r\n$0\r\n\r\n"
assert parse_reply(b"+OK\r\n") == "OK"
assert parse_reply(b"$5\r\nhello\r\n") == b"hello"
assert parse_reply(b"$4\r\na\r\nb\r\n") == b"a\r\nb"
assert parse_reply(b"$0\r\n\r\n") == b""
assert parse_reply(b"$-1\r\n") is None
assert parse_reply(b":42\r\n") == 42
assert parse_reply(b":-3\r\n") == -3
assert parse_reply(b"*-1\r\n") is None
assert parse_reply(b"*0\r\n") == []
v = parse_reply(b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n")
assert v == [b"a", 1, None], v
try:
    parse_reply(b"-ERR wrong number of arguments\r\n")
    raise AssertionError("an error reply did not raise")
except RespError as e:
    assert e.message == "ERR wrong number of arguments", e.message
for bad in (b"", b"+OK", b"+OK\r\nextra", b"$5\r\nhel\r\n", b"$3\r\nabcd\r\n",
            b"?x\r\n", b":x\r\n", b"*2\r\n:1\r\n"):
    try:
        parse_reply(bad)
        raise AssertionError("parsed %r" % bad)
    except ValueError:
        pass


class Fake:
    def __init__(self):
        self.reply, self.rtype, self.sent = b"", KV_REPLY, None

    def call(self, to_name, mtype, payload, timeout_ms=5000):
        self.sent = (to_name, mtype, payload)
        return self.rtype, self.reply


f = Fake()
kv = KV(f)
f.reply = b"+OK\r\n"
assert kv.set("k", "v") is True
assert f.sent == ("kv", 0x4B560001, encode_command("SET", "k", "v")), f.sent
assert KV_REQUEST == 0x4B560001 and KV_REPLY == 0x4B560002
f.reply = b"$1\r\nv\r\n"
assert kv.get("k") == b"v" and f.sent[2] == encode_command("GET", "k")
f.reply = b"$-1\r\n"
assert kv.get("k") is None
f.reply = b":7\r\n"
assert kv.command("INCR", "n") == b":7\r\n"
f.reply = b"-ERR no quorum\r\n"
try:
    kv.set("k", "v")
    raise AssertionError("an error reply did not raise")
except RespError as e:
    assert e.message == "ERR no quorum"
f.reply, f.rtype = b"+OK\r\n", 1
try:
    kv.set("k", "v")
    raise AssertionError("a reply of the wrong type was taken")
except ValueError:
    pass
print("OK resp")
EOF

# The client key is the one of the recipe's `openssl kdf` (docs/client.md),
# and the cookie file's trailing newline is not part of the cookie.
if openssl kdf -help >/dev/null 2>&1; then
	want=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 \
		-kdfopt key:"$COOKIE" -kdfopt info:"troupe client request v2" HKDF |
		tr -d ':' | tr 'A-F' 'a-f')
	got=$(py -c 'import sys, troupe_client as t
print(t.client_key(t.load_cookie(sys.argv[1])).hex())' "$tmp/cookie") ||
		fail "client_key"
	[ "$got" = "$want" ] || fail "client key $got, openssl says $want"
fi

# ---- a fake endpoint: a broken connection, a late reply ------------------
py - <<'EOF' || fail "the fake endpoint"
import socket, struct, threading
import troupe_client as t

pb = t.load_proto()
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
url = "tcp://127.0.0.1:%d" % srv.getsockname()[1]
seen = []


def read_exact(c, n):
    b = b""
    while len(b) < n:
        k = c.recv(n - len(b))
        assert k, "eof"
        b += k
    return b


def serve(plan):
    # plan: per connection, "close" (read a request, close) or "answer"
    # (a reply with an unknown id first, then the right one).
    for what in plan:
        c, _ = srv.accept()
        c.sendall(b"\x00SP\x00\x00\x31\x00\x00")
        assert read_exact(c, 8) == b"\x00SP\x00\x00\x30\x00\x00"
        (n,) = struct.unpack(">Q", read_exact(c, 8))
        msg = read_exact(c, n)
        rid, frame = msg[:4], msg[4:]
        assert rid[0] & 0x80, rid
        req = pb.ClientRequest()
        req.ParseFromString(frame[32:])
        seen.append((rid, req.nonce, req))
        if what == "answer":
            rep = pb.ClientReply(type=req.type, payload=req.payload)
            body = rep.SerializeToString()
            for r in (b"\x80\x00\x00\x00" if rid != b"\x80\x00\x00\x00"
                      else b"\x80\x00\x00\x01", rid):
                c.sendall(struct.pack(">Q", 4 + len(body)) + r + body)
        c.close()


th = threading.Thread(target=serve, args=(["close", "answer"],))
th.start()
c = t.Client(url, "fake", "cookie")
assert c.call("echo", 5, b"again") == (5, b"again")
th.join()
assert c.resends == 1 and c.connects == 2 and c.dropped == 1, \
    (c.resends, c.connects, c.dropped)
# The resent request is a new frame: a new nonce, the same call.
(r1, n1, q1), (r2, n2, q2) = seen
assert n1 != n2 and r1 != r2 and q1.to_name == q2.to_name == "echo"
assert q1.major == 1 and q1.minor == 1 and q1.node == "fake"
assert len(n1) >= 16 and q1.timeout_ms == 5000
# Without resend, a broken connection is Unavailable.
th = threading.Thread(target=serve, args=(["close"],))
th.start()
c = t.Client(url, "fake", "cookie", resend=False)
try:
    c.call("echo", 5, b"once")
    raise AssertionError("a broken connection answered")
except t.Unavailable:
    pass
th.join()
srv.close()
print("OK fake endpoint")
EOF

# ---- a node over tcp:// --------------------------------------------------
port=""
for _ in 1 2 3 4 5; do
	p=$(free_port) || fail "no free port"
	if start_node alpha "tcp://127.0.0.1:$p"; then
		port=$p
		break
	fi
done
[ -n "$port" ] || fail "the node did not start"
alpha=$last_pid
aurl="tcp://127.0.0.1:$port"
echo "node alpha (pid $alpha), client endpoint $aurl"

py - "$aurl" "$tmp/cookie" <<'EOF' || fail "calls over tcp://"
import sys
import troupe_client as t

url, cookie_file = sys.argv[1:3]
cookie = t.load_cookie(cookie_file)
c = t.Client(url, "alpha", cookie)
assert c.call("echo", 1, b"hello") == (1, b"hello")
blob = bytes(range(256)) * 256
assert c.call("echo", 0x4B560001, blob) == (0x4B560001, blob)
assert c.call("echo", 2, b"") == (2, b"")


def refused(client, to_name, code, words):
    try:
        client.call(to_name, 1, b"x")
    except t.TroupeError as e:
        assert e.code == code, (e.code, e.message)
        assert words in e.message, e.message
        return
    raise AssertionError("no refusal")


refused(t.Client(url, "alpha", cookie + b"x"), "echo", t.TR_EINVAL,
        "bad signature")
refused(t.Client(url, "beta", cookie), "echo", t.TR_EINVAL,
        'request is for node "beta"')
refused(c, "nobody", t.TR_ENOENT, 'no actor registered as "nobody"')
# 200 calls in a row, one connection.
for i in range(200):
    p = b"call %d" % i
    assert c.call("echo", 7, p) == (7, p), i
assert c.connects == 1, c.connects
print("OK tcp")
EOF

# ---- restarts: the client connects again ---------------------------------
py - "$aurl" "$tmp/cookie" "$tmp" >"$tmp/restart.out" 2>&1 <<'EOF' &
import os, sys, time
import troupe_client as t

url, cookie_file, d = sys.argv[1:4]
c = t.Client(url, "alpha", t.load_cookie(cookie_file), connect_timeout_ms=500)


def wait_file(name):
    end = time.monotonic() + 30
    while not os.path.exists(os.path.join(d, name)):
        assert time.monotonic() < end, "no " + name
        time.sleep(0.05)


assert c.call("echo", 1, b"before") == (1, b"before")
print("UP1", flush=True)
wait_file("down")
try:
    c.call("echo", 1, b"while down")
    raise AssertionError("a killed node answered")
except t.Unavailable as e:
    print("down:", e, flush=True)
print("DOWN", flush=True)
wait_file("up")
assert c.call("echo", 1, b"after") == (1, b"after")
assert c.connects == 2, c.connects
print("UP2", flush=True)
# Killed and back while the connection sat idle: found closed at the call.
wait_file("up2")
assert c.call("echo", 1, b"again") == (1, b"again")
assert c.connects == 3, c.connects
print("OK restart", flush=True)
EOF
rpid=$!
pids+=("$rpid")
wait_line "$tmp/restart.out" '^UP1$' || fail "restart: no first call"
stop_node "$alpha"
touch "$tmp/down"
wait_line "$tmp/restart.out" '^DOWN$' || fail "restart: the call while down"
start_node alpha "$aurl" || fail "alpha did not start again on $aurl"
alpha=$last_pid
touch "$tmp/up"
wait_line "$tmp/restart.out" '^UP2$' || fail "restart: no call after the restart"
stop_node "$alpha"
start_node alpha "$aurl" || fail "alpha did not start again on $aurl"
alpha=$last_pid
touch "$tmp/up2"
wait "$rpid" || { cat "$tmp/restart.out" >&2; fail "restart"; }
cat "$tmp/restart.out"

# ---- a node over ipc://, one call at a time: busy, retried ---------------
burl="ipc://$tmp/beta.ipc"
start_node beta "$burl" --client-max-calls 1 || fail "beta did not start"
echo "node beta (pid $last_pid), client endpoint $burl"
py - "$burl" "$tmp/cookie" <<'EOF' || fail "calls over ipc://, busy"
import sys, threading, time
import troupe_client as t

url, cookie_file = sys.argv[1:3]
cookie = t.load_cookie(cookie_file)
a = t.Client(url, "beta", cookie)
b = t.Client(url, "beta", cookie, busy_ms=0)
c = t.Client(url, "beta", cookie, busy_ms=20000)
assert b.call("echo", 1, b"over ipc") == (1, b"over ipc")
for i in range(50):
    p = b"ipc %d" % i
    assert b.call("echo", 3, p) == (3, p)
held = {}


def hold():
    # "slow" takes TT_SLOW (102) and never answers: the only call slot
    # is taken until the call times out.
    try:
        a.call("slow", 102, b"\0" * 8, timeout_ms=4000)
    except t.TroupeError as e:
        held["code"] = e.code


th = threading.Thread(target=hold)
th.start()
end = time.monotonic() + 10
while True:  # until b, which does not retry, is refused as busy
    try:
        b.call("echo", 1, b"x")
    except t.TroupeError as e:
        assert e.code == t.TR_EAGAIN, e
        break
    assert time.monotonic() < end, "never busy"
    time.sleep(0.01)
assert c.call("echo", 1, b"patient") == (1, b"patient")
assert c.busy_retries >= 1, c.busy_retries
th.join()
assert held.get("code") == t.TR_ETIMEDOUT, held
print("OK ipc, busy (%d retries)" % c.busy_retries)
EOF

# ---- kv_client.py load: counting errors, fail-over, giving up ------------
kv() {
	timeout 60 "$PY" "$src/samples/kv/client/kv_client.py" "$@"
}

# No "kv" actor on the test node: every write is refused, counted by its
# message, and the keys file stays empty.
kv --url "$aurl" --node alpha --cookie-file "$tmp/cookie" \
	load --seconds 2.5 --keys-file "$tmp/keys1" --prefix t1 \
	>"$tmp/load1.out" 2>&1 || fail "load against alpha: $(cat "$tmp/load1.out")"
cat "$tmp/load1.out"
grep -Eq '^py-client: [0-9]+ ok/s, [1-9][0-9]* errors \(no actor registered as "kv"' \
	"$tmp/load1.out" || fail "load: no status line"
grep -Eq '^py-client: done after [0-9.]+ s: 0 ok, [1-9][0-9]* errors \(no actor registered as "kv"' \
	"$tmp/load1.out" || fail "load: no summary"
[ -f "$tmp/keys1" ] && [ ! -s "$tmp/keys1" ] || fail "load: keys file not empty"

# The first node is not there: the second, "echo", answers (with a
# reply of the wrong type, counted as such).
kv --url "ipc://$tmp/nobody.ipc" --node ghost --url "$aurl" --node alpha \
	--cookie-file "$tmp/cookie" --actor echo \
	load --seconds 1.5 --keys-file "$tmp/keys2" \
	>"$tmp/load2.out" 2>&1 || fail "load with fail-over: $(cat "$tmp/load2.out")"
cat "$tmp/load2.out"
grep -Eq '^py-client: done after .* errors \(.*reply of type 0x4b560001' \
	"$tmp/load2.out" || fail "load: the second node was not used"
grep -Eq '^py-client: done after .*unavailable: ' "$tmp/load2.out" ||
	fail "load: the first node was not tried"

# The node is killed under a load: it gives up 5 s later, exit 3.
kv --url "$aurl" --node alpha --cookie-file "$tmp/cookie" \
	load --seconds 50 --keys-file "$tmp/keys3" >"$tmp/load3.out" 2>&1 &
lpid=$!
pids+=("$lpid")
wait_line "$tmp/load3.out" 'ok/s' || fail "load 3: no status line"
stop_node "$alpha"
wait "$lpid"
rc=$?
cat "$tmp/load3.out"
[ "$rc" = 3 ] || fail "load against a killed node: exit $rc, want 3"
grep -Eq '^py-client: gave up: no node reachable for 5 s after' \
	"$tmp/load3.out" || fail "load: no summary after giving up"

# cmd: one command; no kv here, so the node's refusal, exit 1.
start_node alpha "$aurl" || fail "alpha did not start again on $aurl"
out=$(kv --url "$aurl" --node alpha --cookie-file "$tmp/cookie" cmd PING 2>&1)
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *'no actor registered as "kv"'* ]] ||
	fail "cmd: exit $rc, output [$out]"

if grep -Eq 'ERROR: (Address|Leak|Undefined)Sanitizer|WARNING: ThreadSanitizer|runtime error:' \
	"$tmp"/*.log; then
	fail "a sanitizer reported on a node"
fi
echo "PASS"
