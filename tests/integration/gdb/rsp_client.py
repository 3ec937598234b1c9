#!/usr/bin/env python3
"""The remote-protocol steps gdb's batch mode cannot script, spoken to keel-gdbserver directly:
a refused checksum, continue, the guest serving while continued, ^C, the counter read again,
detach. Usage: rsp_client.py PORT COUNTER_ADDR_HEX EXPECTED_BEFORE CURL_URL"""
import socket
import subprocess
import sys

port, addr, before, url = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
sock = socket.create_connection(("127.0.0.1", port), timeout=60)
pending = b""


def fail(msg):
    print("rsp: FAIL " + msg)
    sys.exit(1)


def read_byte():
    global pending
    while not pending:
        chunk = sock.recv(4096)
        if not chunk:
            fail("connection closed")
        pending += chunk
    b, pending = pending[:1], pending[1:]
    return b


def send(body):
    sock.sendall(b"$" + body + b"#%02x" % (sum(body) & 0xFF))


def expect_ack(want=b"+"):
    got = read_byte()
    if got != want:
        fail("expected %r, got %r" % (want, got))


def read_packet():
    while read_byte() != b"$":
        pass
    body = b""
    while (c := read_byte()) != b"#":
        body += c
    check = read_byte() + read_byte()
    if int(check, 16) != sum(body) & 0xFF:
        fail("bad checksum from the server")
    sock.sendall(b"+")
    return body


def ask(body):
    send(body)
    expect_ack()
    return read_packet()


def counter():
    r = ask(b"m%s,8" % addr.encode())
    if len(r) != 16:
        fail("m reply %r" % r)
    return int.from_bytes(bytes.fromhex(r.decode()), "little")


if b"PacketSize" not in ask(b"qSupported:swbreak+"):
    fail("qSupported")
sock.sendall(b"$?#00")
expect_ack(b"-")
print("rsp: bad checksum refused with '-'")
if ask(b"?") != b"S05":
    fail("? is not S05")
if len(ask(b"g")) != (17 * 8 + 7 * 4) * 2:
    fail("g has the wrong length")
n = counter()
print("rsp: counter %d while stopped" % n)
if n != before:
    fail("counter %d, expected %d" % (n, before))
send(b"c")
expect_ack()
codes = [subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "10", "-w", "%{http_code}", url],
                        capture_output=True, text=True).stdout for _ in range(2)]
print("rsp: continued; curl while running: %s" % " ".join(codes))
if codes != ["200", "200"]:
    fail("the guest did not serve while continued")
sock.sendall(b"\x03")
stop = read_packet()
if stop != b"S02":
    fail("^C answered %r, not S02" % stop)
print("rsp: ^C stopped it: S02")
n = counter()
print("rsp: counter %d after continue" % n)
if n != before + 2:
    fail("counter %d, expected %d" % (n, before + 2))
if ask(b"D") != b"OK":
    fail("D")
print("rsp: detached")
