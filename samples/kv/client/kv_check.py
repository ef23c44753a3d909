#!/usr/bin/python3
"""Checks that acknowledged writes are in troupe-kv.

  kv_check.py HOST:PORT KEYS-FILE [KEYS-FILE...]

Each KEYS-FILE holds "key value" lines, one per write that was answered
+OK (kv_client.py load writes them). The keys are read back over the
Redis protocol with pipelined GETs; the last value written for a key is
the one expected. Prints one line with what it found and exits 0 only if
every acknowledged write is there.
"""
import socket
import sys


def read_reply(f):
    line = f.readline()
    if not line:
        raise EOFError("the server closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"-":
        return ("error", rest.decode(errors="replace"))
    return rest


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = argv[1].rsplit(":", 1)
    want = {}
    for path in argv[2:]:
        with open(path, "rb") as f:
            for line in f:
                parts = line.rstrip(b"\n").split(b" ", 1)
                if len(parts) == 2:
                    want[parts[0]] = parts[1]
    keys = list(want)
    sock = socket.create_connection((host, int(port)), timeout=30)
    f = sock.makefile("rb")
    lost, wrong, errors = [], [], []
    batch = 500
    for i in range(0, len(keys), batch):
        chunk = keys[i:i + batch]
        out = bytearray()
        for k in chunk:
            out += b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
        sock.sendall(out)
        for k in chunk:
            got = read_reply(f)
            if isinstance(got, tuple):
                errors.append((k, got[1]))
            elif got is None:
                lost.append(k)
            elif got != want[k]:
                wrong.append((k, got))
    sock.close()
    ok = len(keys) - len(lost) - len(wrong) - len(errors)
    print("check: %d acknowledged writes read back through %s: %d present,"
          " %d lost, %d with another value, %d errors"
          % (len(keys), argv[1], ok, len(lost), len(wrong), len(errors)))
    for k in lost[:5]:
        print("  lost: %s" % k.decode(errors="replace"))
    for k, v in wrong[:5]:
        print("  other value: %s = %r" % (k.decode(errors="replace"), v))
    for k, e in errors[:5]:
        print("  error: %s: %s" % (k.decode(errors="replace"), e))
    return 0 if ok == len(keys) and keys else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
