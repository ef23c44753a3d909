"""A client of a troupe node's client endpoint (docs/client.md), in Python 3.

    from troupe_client import Client, TroupeError, load_cookie

    c = Client("tcp://127.0.0.1:7070", "alpha", load_cookie("cookie"))
    mtype, payload = c.call("echo", 1, b"hello")

It needs the standard library and Google's protobuf runtime (Debian:
python3-protobuf) only. troupe.proto is compiled with protoc (Debian:
protobuf-compiler) at first use, into a cache directory
(troupe_proto.py, which must sit beside this file); nothing generated is
kept in the sources.

It speaks nng's scalability protocol itself, on a plain socket, as req0
(docs/client.md, "Without an SP library"): over tcp://HOST:PORT and
ipc://PATH (a Unix socket, whose messages carry one more byte, a message
type of 1, before their length). tls+tcp:// is not supported.

One request is in flight per Client at a time; a lock makes a Client safe
to share between threads, but threads that call at the same time wait
for each other: give each thread its own Client for parallel calls.
"""

import hashlib
import hmac
import secrets
import select
import socket
import struct
import threading
import time

from troupe_proto import load_proto

__all__ = [
    "Client",
    "TroupeError",
    "Unavailable",
    "NoReply",
    "load_cookie",
    "client_key",
    "load_proto",
    "error_name",
]

# The error codes of include/troupe/troupe.h a node answers with.
TR_EINVAL = -1
TR_ENOMEM = -2
TR_ENOPROC = -3
TR_ETIMEDOUT = -4
TR_ECLOSED = -5
TR_EMSGSIZE = -6
TR_EEXIST = -7
TR_ENOENT = -8
TR_ENOTSUP = -9
TR_EAGAIN = -10

_ERROR_NAMES = {
    TR_EINVAL: "TR_EINVAL",
    TR_ENOMEM: "TR_ENOMEM",
    TR_ENOPROC: "TR_ENOPROC",
    TR_ETIMEDOUT: "TR_ETIMEDOUT",
    TR_ECLOSED: "TR_ECLOSED",
    TR_EMSGSIZE: "TR_EMSGSIZE",
    TR_EEXIST: "TR_EEXIST",
    TR_ENOENT: "TR_ENOENT",
    TR_ENOTSUP: "TR_ENOTSUP",
    TR_EAGAIN: "TR_EAGAIN",
}

CLIENT_MAJOR = 1
CLIENT_MINOR = 1
KEY_INFO = b"troupe client request v2"
NONCE_LEN = 16
SIG_LEN = 32
TYPE_LOCAL_BASE = 0xFFFE0000

# SP: "\0SP\0", the protocol number (16 bits, big-endian), two zeros.
SP_REQ0 = 0x30
SP_REP0 = 0x31
_SP_HEADER = b"\x00SP\x00" + struct.pack(">H", SP_REQ0) + b"\x00\x00"

# The message of a request refused because the endpoint's call slots are
# all taken (transport/client.c); such a frame may be sent again as it is.
_BUSY_PREFIX = "the endpoint is serving its limit"


def error_name(code):
    """The TR_E* name of a troupe error code, or str(code)."""
    return _ERROR_NAMES.get(code, str(code))


class TroupeError(Exception):
    """The node refused the request, or the call failed: `code` is the
    troupe error code (TR_E*, negative), `message` the node's reason."""

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return "%s (%s)" % (self.message, error_name(self.code))


class Unavailable(ConnectionError):
    """No connection to the node could be made, or the connection broke
    before the reply came (and the request was not sent again)."""


class NoReply(TimeoutError):
    """No reply came within the call's time (its timeout_ms and a
    grace); the connection was closed."""


class _Broken(Exception):
    """The connection ended or delivered something that is no SP reply."""


def load_cookie(path):
    """The cookie in the file at `path`, as bytes: one trailing newline
    is not part of it (as for the node)."""
    with open(path, "rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise ValueError("%s: the cookie is empty" % path)
    return data


def client_key(cookie):
    """HKDF-SHA256(salt = empty, key = cookie, info = KEY_INFO), 32 bytes,
    written with HMAC alone (RFC 5869; docs/client.md)."""
    if isinstance(cookie, str):
        cookie = cookie.encode()
    prk = hmac.new(b"\0" * 32, cookie, hashlib.sha256).digest()
    return hmac.new(prk, KEY_INFO + b"\x01", hashlib.sha256).digest()


# ---- SP over a stream socket ---------------------------------------------


def _parse_url(url):
    if url.startswith("tcp://"):
        hp = url[len("tcp://"):]
        if hp.startswith("["):
            host, _, rest = hp[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = hp.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("bad URL %r (tcp://HOST:PORT)" % url)
        return "tcp", (host, int(port))
    if url.startswith("ipc://"):
        path = url[len("ipc://"):]
        if not path:
            raise ValueError("bad URL %r (ipc://PATH)" % url)
        return "ipc", path
    raise ValueError("unsupported URL %r (tcp:// or ipc://)" % url)


class _SPConn:
    """One req0 connection: the SP handshake done, messages framed as
    the transport wants them (tcp: 8-byte big-endian length; ipc: a type
    byte 1, then that length)."""

    def __init__(self, url, connect_timeout, max_reply):
        kind, addr = _parse_url(url)
        self.ipc = kind == "ipc"
        self.max_reply = max_reply
        if self.ipc:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.settimeout(connect_timeout)
                s.connect(addr)
            except BaseException:
                s.close()
                raise
        else:
            s = socket.create_connection(addr, timeout=connect_timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        try:
            s.sendall(_SP_HEADER)
            peer = self._recv_exact(8, time.monotonic() + connect_timeout)
        except (_Broken, NoReply, OSError) as e:
            self.close()
            raise Unavailable("%s: no SP header from the node (%s)" %
                              (url, e)) from None
        proto = struct.unpack(">H", peer[4:6])[0]
        if peer[:4] != b"\x00SP\x00" or peer[6:] != b"\x00\x00" or \
                proto != SP_REP0:
            self.close()
            raise Unavailable("%s: not an SP rep0 endpoint (header %s)" %
                              (url, peer.hex()))

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def stale(self):
        """True if the peer has closed the connection (or it failed)
        while it was idle."""
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
            if not r:
                return False
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def send(self, body, deadline):
        head = struct.pack(">Q", len(body))
        if self.ipc:
            head = b"\x01" + head
        try:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            self.sock.sendall(head + body)
        except OSError as e:
            raise _Broken("send: %s" % e) from None

    def _recv_exact(self, n, deadline):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoReply("no reply in time")
            self.sock.settimeout(left)
            try:
                k = self.sock.recv_into(view[got:])
            except socket.timeout:
                raise NoReply("no reply in time") from None
            except OSError as e:
                raise _Broken("recv: %s" % e) from None
            if k == 0:
                raise _Broken("connection closed by the node")
            got += k
        return bytes(buf)

    def recv(self, deadline):
        head = self._recv_exact(9 if self.ipc else 8, deadline)
        if self.ipc:
            if head[0] != 1:
                raise _Broken("ipc message of type %d" % head[0])
            head = head[1:]
        (n,) = struct.unpack(">Q", head)
        if n > self.max_reply:
            raise _Broken("reply of %d bytes (limit %d)" % (n, self.max_reply))
        return self._recv_exact(n, deadline)


# ---- the client -----------------------------------------------------------


class Client:
    """Calls actors registered on one node through its client endpoint.

    url     the node's client_url: tcp://HOST:PORT or ipc://PATH
    node    the node's name (tr_node_opts.name); another node refuses
    cookie  the node's cookie (str or bytes; see load_cookie)

    connect_timeout_ms  for the TCP connect and the SP handshake
    grace_ms            how long past a call's timeout_ms to wait for the
                        node's reply (it answers TR_ETIMEDOUT itself)
    busy_ms             how long to keep sending a request refused as
                        busy (TR_EAGAIN) again, backing off; 0: never
    resend              a request whose connection broke before its reply
                        came is sent once more, on a new connection, as a
                        new frame. The node may have run the first one
                        (if it died after): pass False where running a
                        call twice is wrong; then call raises Unavailable.

    The connection is opened at the first call and kept; one the node
    closed (idle, restarted) is opened again at the next call.
    Counters for the curious: connects, busy_retries, resends, dropped.
    """

    def __init__(self, url, node, cookie, proto_dir=None,
                 connect_timeout_ms=2000, grace_ms=1000, busy_ms=2000,
                 resend=True, max_reply=64 << 20):
        _parse_url(url)
        self.url = url
        self.node = node
        self._key = client_key(cookie)
        self._pb = load_proto(proto_dir)
        self.connect_timeout = connect_timeout_ms / 1000.0
        self.grace = grace_ms / 1000.0
        self.busy = busy_ms / 1000.0
        self.resend = resend
        self.max_reply = max_reply
        self._conn = None
        self._lock = threading.Lock()
        self._seq = secrets.randbits(31)
        self.connects = 0
        self.busy_retries = 0
        self.resends = 0
        self.dropped = 0

    def close(self):
        with self._lock:
            self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _drop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connected(self):
        if self._conn is not None and self._conn.stale():
            self._drop()
        if self._conn is None:
            try:
                self._conn = _SPConn(self.url, self.connect_timeout,
                                     self.max_reply + 4)
            except OSError as e:
                if isinstance(e, Unavailable):
                    raise
                raise Unavailable("cannot connect to %s: %s" %
                                  (self.url, e)) from None
            self.connects += 1
        return self._conn

    def frame(self, to_name, mtype, payload, timeout_ms):
        """A signed frame: HMAC-SHA256(client key, body) || body, with a
        fresh nonce and timestamp."""
        req = self._pb.ClientRequest(
            major=CLIENT_MAJOR, minor=CLIENT_MINOR, node=self.node,
            timestamp_ms=int(time.time() * 1000),
            nonce=secrets.token_bytes(NONCE_LEN), to_name=to_name,
            type=mtype, payload=payload, timeout_ms=timeout_ms)
        body = req.SerializeToString()
        return hmac.new(self._key, body, hashlib.sha256).digest() + body

    def _roundtrip(self, conn, frame, deadline):
        self._seq = (self._seq + 1) & 0x7FFFFFFF
        rid = struct.pack(">I", 0x80000000 | self._seq)
        conn.send(rid + frame, deadline)
        while True:
            msg = conn.recv(deadline)
            if len(msg) < 4 or not msg[0] & 0x80:
                raise _Broken("reply without a request id")
            if msg[:4] == rid:
                break
            self.dropped += 1  # a late reply to an earlier request
        reply = self._pb.ClientReply()
        try:
            reply.ParseFromString(msg[4:])
        except Exception as e:  # google.protobuf.message.DecodeError
            raise _Broken("reply does not decode: %s" % e) from None
        return reply

    def call(self, to_name, type, payload=b"", timeout_ms=5000):
        """Calls the actor registered as `to_name` on the node with a
        message of `type` and `payload` (bytes); returns the reply's
        (type, payload). The node waits timeout_ms for the actor (0: 5 s;
        at most 30 s).

        Raises TroupeError for a refusal or a failed call, Unavailable
        when no connection can be made (or kept, see resend), NoReply
        when no reply comes in time."""
        if isinstance(payload, str):
            payload = payload.encode()
        wait = (timeout_ms or 5000) / 1000.0 + self.grace
        with self._lock:
            fr = self.frame(to_name, type, payload, timeout_ms)
            made = time.monotonic()
            busy_until = made + self.busy
            backoff = 0.005
            resent = False
            while True:
                conn = self._connected()
                try:
                    reply = self._roundtrip(conn, fr,
                                            time.monotonic() + wait)
                except _Broken as e:
                    self._drop()
                    if resent or not self.resend:
                        raise Unavailable("%s: %s, before the reply" %
                                          (self.url, e)) from None
                    resent = True
                    self.resends += 1
                    fr = self.frame(to_name, type, payload, timeout_ms)
                    made = time.monotonic()
                    continue
                except NoReply:
                    self._drop()
                    raise NoReply("%s: no reply from %r within %.1f s" %
                                  (self.url, to_name, wait)) from None
                if reply.error == 0:
                    return reply.type, reply.payload
                now = time.monotonic()
                if reply.error != TR_EAGAIN or now >= busy_until:
                    raise TroupeError(reply.error, reply.message)
                # Busy: the frame was not recorded and may go again as it
                # is while young (its timestamp well in the window). The
                # other TR_EAGAIN (too many recent requests) wants a new
                # frame.
                self.busy_retries += 1
                time.sleep(min(backoff, max(0.0, busy_until - now)))
                backoff = min(backoff * 2, 0.2)
                if not reply.message.startswith(_BUSY_PREFIX) or \
                        time.monotonic() - made > 5.0:
                    fr = self.frame(to_name, type, payload, timeout_ms)
                    made = time.monotonic()
