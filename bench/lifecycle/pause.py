#!/usr/bin/env python3
"""Asks a web server for / over and over (a new connection each time, 1 s at most per try) until
STOPFILE exists; prints the longest time in ms between two answers, and how many tries failed.

    pause.py IP STOPFILE
"""
import os
import socket
import sys
import time


def answered(ip):
    try:
        with socket.create_connection((ip, 80), timeout=1) as s:
            s.settimeout(1)
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def main():
    ip, stop = sys.argv[1], sys.argv[2]
    last = time.monotonic()
    longest = 0.0
    failed = 0
    while not os.path.exists(stop):
        if answered(ip):
            now = time.monotonic()
            longest = max(longest, now - last)
            last = now
            time.sleep(0.02)
        else:
            failed += 1
    print("%d %d" % (longest * 1000, failed))


if __name__ == "__main__":
    main()
