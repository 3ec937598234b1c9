#!/usr/bin/env python3
"""A Redis client that keeps one TCP connection open and writes keys until told to stop.

    kvwriter.py HOST PORT STATE STOPFILE

Sends SET lc:N value-N (N = 1, 2, ...) one at a time over a single connection and waits for
each reply (60 s at most). After every acknowledged SET it rewrites STATE with one line:
"acked N maxgap_ms M errors E", so the scenario can watch progress and knows exactly which
keys were acknowledged. An error reply is counted and the key is not acknowledged. When
STOPFILE exists it asks DBSIZE on the same connection, prints a summary and exits 0. The
connection breaking (closed, reset, a reply that does not come) is exit 1: the point is that
the connection survives xl save / restore / migrate.
"""
import os
import socket
import sys
import time


def read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed by the server")
    if not line.endswith(b"\r\n"):
        raise ConnectionError("truncated reply %r" % line)
    return line[:-2]


def main():
    host, port, state, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    s = socket.create_connection((host, port), timeout=60)
    s.settimeout(60)
    f = s.makefile("rb")
    acked = errors = 0
    max_gap = 0.0
    last = time.monotonic()
    n = 0
    try:
        while not os.path.exists(stop):
            n += 1
            key, value = b"lc:%d" % n, b"value-%d" % n
            s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
            reply = read_reply(f)
            now = time.monotonic()
            max_gap = max(max_gap, now - last)
            last = now
            if reply == b"+OK":
                acked = n
            else:
                errors += 1
                print("kvwriter: SET %s answered %r" % (key.decode(), reply), flush=True)
            tmp = state + ".tmp"
            with open(tmp, "w") as out:
                out.write("acked %d maxgap_ms %d errors %d\n" % (acked, max_gap * 1000, errors))
            os.replace(tmp, state)
        s.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
        dbsize = read_reply(f)
    except (OSError, ConnectionError) as e:
        print("kvwriter: the connection broke after %d acknowledged SETs: %s" % (acked, e), flush=True)
        return 1
    print("kvwriter: %d SETs acknowledged on one connection, %d errors, longest wait %d ms, DBSIZE %s"
          % (acked, errors, max_gap * 1000, dbsize.decode(errors="replace")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
