"""systemd's side of sd_notify(3), for the deploy tests: binds each PATH
as a unix datagram socket (a node's NOTIFY_SOCKET) and appends every
datagram that arrives on it to PATH.log, one line a datagram, its
"KEY=value" lines joined with a blank. Prints "listening" once every
socket is bound; runs until SIGTERM, or for SECONDS at most.

    notify_listen.py SECONDS PATH...
"""

import os
import select
import signal
import socket
import sys
import time


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    limit = time.monotonic() + float(argv[1])
    socks = {}
    for path in argv[2:]:
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        socks[s] = open(path + ".log", "a", encoding="utf-8")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening", flush=True)
    while time.monotonic() < limit:
        ready, _, _ = select.select(list(socks), [], [], 0.5)
        for s in ready:
            data = s.recv(4096).decode("utf-8", "replace")
            log = socks[s]
            log.write(" ".join(l for l in data.split("\n") if l) + "\n")
            log.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
