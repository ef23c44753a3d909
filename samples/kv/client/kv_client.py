#!/usr/bin/python3
"""troupe-kv through a node's client endpoint (troupe_client.py).

The kv service registers an actor "kv" that takes a message of type
KV_REQUEST whose payload is one Redis command as a RESP array, and
replies with type KV_REPLY and the RESP reply's bytes.

    kv = KV(Client(url, node, cookie))
    kv.set("k", "v")            # True on +OK
    kv.get("k")                 # b"v", or None
    kv.command("INCR", "n")     # the raw reply: b":1\\r\\n"

As a program (run it with no arguments for the usage):

    kv_client.py --url URL --node NAME [--url URL --node NAME]...
                 --cookie-file F load --seconds S --keys-file OUT
                 [--prefix P] [--timeout-ms MS] [--actor NAME]
    kv_client.py --url URL --node NAME --cookie-file F cmd ARG...

`load` writes P:0, P:1, ... (each key once, value "v<i>-<run tag>"),
appends "key value" to OUT for each write acknowledged with +OK (flushed
at once, so OUT lists acknowledged writes only), and prints a status
line a second and a summary at the end. It keeps going across errors
and reconnects; with several --url/--node pairs it moves to the next
pair when a node cannot be reached. It exits 0 after S seconds (or on
SIGTERM / SIGINT), 3 when no node could be reached for 5 s, 2 on bad
usage. `cmd` sends one command and prints its reply.
"""

import argparse
import collections
import secrets
import signal
import sys
import time

from troupe_client import Client, NoReply, TroupeError, Unavailable, \
    load_cookie

KV_ACTOR = "kv"
KV_REQUEST = 0x4B560001
KV_REPLY = 0x4B560002
GIVE_UP_S = 5.0


class RespError(Exception):
    """An error reply (-ERR ...): `message` is its text, without "-"."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def _arg_bytes(a):
    if isinstance(a, bytes):
        return a
    if isinstance(a, (bytearray, memoryview)):
        return bytes(a)
    if isinstance(a, str):
        return a.encode()
    if isinstance(a, int) and not isinstance(a, bool):
        return str(a).encode()
    raise TypeError("a command argument must be bytes, str or int, not %s" %
                    type(a).__name__)


def encode_command(*args):
    """One command as a RESP array of bulk strings."""
    if not args:
        raise ValueError("empty command")
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _arg_bytes(a)
        out.append(b"$%d\r\n" % len(b))
        out.append(b)
        out.append(b"\r\n")
    return b"".join(out)


def _line(data, i):
    j = data.find(b"\r\n", i)
    if j < 0:
        raise ValueError("RESP reply cut short")
    return data[i:j], j + 2


def _parse(data, i):
    if i >= len(data):
        raise ValueError("RESP reply cut short")
    kind = data[i:i + 1]
    line, j = _line(data, i + 1)
    if kind == b"+":
        return line.decode("utf-8", "replace"), j
    if kind == b"-":
        return RespError(line.decode("utf-8", "replace")), j
    if kind == b":":
        return int(line), j
    if kind == b"$":
        n = int(line)
        if n == -1:
            return None, j
        if n < 0 or j + n + 2 > len(data) or data[j + n:j + n + 2] != b"\r\n":
            raise ValueError("bad RESP bulk string")
        return data[j:j + n], j + n + 2
    if kind == b"*":
        n = int(line)
        if n == -1:
            return None, j
        if n < 0:
            raise ValueError("bad RESP array length")
        items = []
        for _ in range(n):
            v, j = _parse(data, j)
            items.append(v)
        return items, j
    raise ValueError("unknown RESP reply type %r" % kind)


def parse_reply(data):
    """One RESP (2) reply, all of `data`: +simple -> str, :n -> int,
    $n -> bytes, $-1 / *-1 -> None, *n -> list; -ERR raises RespError
    (at the top level; inside an array it is an item)."""
    v, j = _parse(bytes(data), 0)
    if j != len(data):
        raise ValueError("%d bytes after the RESP reply" % (len(data) - j))
    if isinstance(v, RespError):
        raise v
    return v


class KV:
    """troupe-kv's commands over a troupe_client.Client."""

    def __init__(self, client, actor=KV_ACTOR, timeout_ms=5000):
        self.client = client
        self.actor = actor
        self.timeout_ms = timeout_ms

    def command(self, *args):
        """Sends one command; returns the raw RESP reply."""
        t, p = self.client.call(self.actor, KV_REQUEST, encode_command(*args),
                                self.timeout_ms)
        if t != KV_REPLY:
            raise ValueError("reply of type 0x%08x, not 0x%08x" % (t, KV_REPLY))
        return p

    def set(self, key, value):
        r = parse_reply(self.command("SET", key, value))
        if r != "OK":
            raise ValueError("SET answered %r" % (r,))
        return True

    def get(self, key):
        r = parse_reply(self.command("GET", key))
        if r is not None and not isinstance(r, bytes):
            raise ValueError("GET answered %r" % (r,))
        return r


# ---- the program ---------------------------------------------------------


def _reasons(c):
    return "; ".join("%s: %d" % (k, n) for k, n in c.most_common())


def _line_out(s):
    sys.stdout.write("py-client: %s\n" % s)
    sys.stdout.flush()


def _reason_of(e):
    if isinstance(e, TroupeError):
        return e.message[:80]
    if isinstance(e, RespError):
        return e.message[:80]
    if isinstance(e, Unavailable):
        return "unavailable"
    if isinstance(e, NoReply):
        return "no reply"
    return ("%s: %s" % (type(e).__name__, e))[:80]


def run_load(kvs, seconds, keys_file, prefix):
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    tag = secrets.token_hex(4)
    ok = 0
    errors = collections.Counter()
    win_ok, win_err = 0, collections.Counter()
    cur = 0
    fails_in_row = 0
    start = time.monotonic()
    last_good = start
    win_start = start
    gave_up = False
    i = 0
    with open(keys_file, "w") as out:
        while not stop and time.monotonic() - start < seconds:
            key = "%s:%d" % (prefix, i)
            value = "v%d-%s" % (i, tag)
            i += 1
            try:
                kvs[cur].set(key, value)
                out.write("%s %s\n" % (key, value))
                out.flush()
                ok += 1
                win_ok += 1
                fails_in_row = 0
                last_good = time.monotonic()
            except (TroupeError, RespError, ValueError) as e:
                # The node answered: it is there, the write failed.
                r = _reason_of(e)
                errors[r] += 1
                win_err[r] += 1
                last_good = time.monotonic()
            except (Unavailable, NoReply, OSError) as e:
                r = _reason_of(e)
                errors[r] += 1
                win_err[r] += 1
                fails_in_row += 1
                cur = (cur + 1) % len(kvs)
                if time.monotonic() - last_good >= GIVE_UP_S:
                    gave_up = True
                    break
                if fails_in_row % len(kvs) == 0:
                    time.sleep(0.1)
            now = time.monotonic()
            if now - win_start >= 1.0:
                _line_out("%d ok/s, %d errors (%s)" %
                          (round(win_ok / (now - win_start)),
                           sum(win_err.values()), _reasons(win_err)))
                win_ok, win_err, win_start = 0, collections.Counter(), now
    took = time.monotonic() - start
    end = ("gave up: no node reachable for %.0f s" % GIVE_UP_S if gave_up
           else "stopped" if stop else "done")
    _line_out("%s after %.1f s: %d ok, %d errors (%s), %d keys in %s" %
              (end, took, ok, sum(errors.values()), _reasons(errors), ok,
               keys_file))
    return 3 if gave_up else 0


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="kv_client.py",
        description="troupe-kv through a troupe node's client endpoint")
    p.add_argument("--url", action="append", required=True,
                   help="a node's client_url (tcp://HOST:PORT or ipc://PATH)"
                   "; repeat with --node for fail-over")
    p.add_argument("--node", action="append", required=True,
                   help="the name of the node at the --url of the same rank")
    p.add_argument("--cookie-file", required=True,
                   help="the cluster's cookie (one trailing newline ignored)")
    p.add_argument("--proto-dir", help="troupe's proto/ directory "
                   "(default: $TROUPE_PROTO_DIR, or the one of this tree)")
    p.add_argument("--actor", default=KV_ACTOR,
                   help="the actor to call (default %(default)s)")
    sub = p.add_subparsers(dest="mode", required=True)
    ld = sub.add_parser("load", help="write keys, record acknowledged ones")
    ld.add_argument("--seconds", type=float, required=True)
    ld.add_argument("--keys-file", required=True)
    ld.add_argument("--prefix", default="py")
    ld.add_argument("--timeout-ms", type=int, default=2000,
                    help="each call's timeout_ms (default 2000)")
    cm = sub.add_parser("cmd", help="send one command, print its reply")
    cm.add_argument("args", nargs="+")
    a = p.parse_args(argv)
    if len(a.url) != len(a.node):
        p.error("give as many --node as --url")
    try:
        cookie = load_cookie(a.cookie_file)
    except (OSError, ValueError) as e:
        p.error("cookie: %s" % e)
    if a.mode == "load":
        kvs = [KV(Client(u, n, cookie, proto_dir=a.proto_dir,
                         connect_timeout_ms=1000, busy_ms=1000),
                  actor=a.actor, timeout_ms=a.timeout_ms)
               for u, n in zip(a.url, a.node)]
        return run_load(kvs, a.seconds, a.keys_file, a.prefix)
    kv = KV(Client(a.url[0], a.node[0], cookie, proto_dir=a.proto_dir),
            actor=a.actor)
    try:
        raw = kv.command(*a.args)
        print(repr(parse_reply(raw)))
    except RespError as e:
        print("(error) %s" % e.message)
        return 1
    except (TroupeError, Unavailable, NoReply, ValueError) as e:
        sys.stderr.write("kv_client.py: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
