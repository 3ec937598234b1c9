"""Hostile and well-behaved clients for the hostile scenario (run.sh), run in dom0.

Each subcommand prints one summary line "NAME key=value ..." and exits 0 when its own
expectation held, 1 otherwise, so run.sh can run several at once and check each.
  keepalive PROTO IP SECONDS [READY_FILE]  one connection, a request every 0.25 s; every one
                                 answered; READY_FILE is created after the first answer
  newclients PROTO IP SECONDS    a new connection every 0.5 s; each answered within 30 s
                                 (a refused connection is retried; a hang is a failure)
  trickle PROTO IP N SECONDS     N connections each sending one byte of a request per second;
                                 reports how many the server closed and how fast
  unread PROTO IP SECONDS        pipelined requests in 1-byte segments, replies never read
  fill IP VALUE_KIB              redis: SETs of VALUE_KIB values until the store refuses one
  unreadbig IP N KEY SECONDS     redis: N connections with SO_RCVBUF 4096 (8 KiB: Linux doubles
                                 it) each ask twice for KEY's value and never read; held open
                                 for SECONDS
  getbig IP KEY KIB LIMIT_S      redis: GET KEY, whose value must be KIB KiB of "v", within
                                 LIMIT_S seconds
  ptb GUEST_LL DOM0_LL IFACE MTU  an ICMPv6 Packet Too Big of MTU from DOM0_LL to GUEST_LL (both
                                 link-local on IFACE), quoting a TCP segment from the guest's
                                 port 80 to DOM0_LL (lwIP takes the MTU for the quoted destination)
  mss GUEST_LL DOM0_LL IFACE PORT  connects from DOM0_LL over IPv6 and prints "mss N", dom0's
                                 segment size: the least of the guest's offer and dom0's own
                                 1440 (no TCP timestamps: lwIP has none); an offer of 0 reads 1220
PROTO is http (port 80) or redis (port 6379).
"""
import errno, os, select, socket, sys, time

PORT = {"http": 80, "redis": 6379}
REQUEST = {"http": b"GET / HTTP/1.1\r\nHost: keel\r\n\r\n", "redis": b"PING\r\n"}


def connect(ip, port, timeout=10):
    s = socket.create_connection((ip, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_reply(f, proto):
    """Reads one reply; returns a short status string ("200", "+PONG", ...) or raises."""
    if proto == "redis":
        line = f.readline()
        if not line:
            raise EOFError("closed")
        if line[:1] == b"$":
            n = int(line[1:])
            if n >= 0:
                f.read(n + 2)
        return line.strip().decode(errors="replace")[:60]
    status = f.readline()
    if not status:
        raise EOFError("closed")
    length = 0
    while True:
        h = f.readline()
        if not h:
            raise EOFError("closed in headers")
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    f.read(length)
    return status.split()[1].decode()


def keepalive(proto, ip, seconds, ready=None):
    end = time.time() + seconds
    ok, worst = 0, 0.0
    try:
        with connect(ip, PORT[proto], timeout=30) as s:
            f = s.makefile("rb")
            while time.time() < end:
                t = time.time()
                s.sendall(REQUEST[proto])
                r = read_reply(f, proto)
                if r not in ("200", "+PONG"):
                    raise ValueError("answer " + r)
                ok += 1
                worst = max(worst, time.time() - t)
                if ok == 1 and ready:
                    open(ready, "w").close()   # connected and answered: the attack may start
                time.sleep(0.25)
    except (OSError, EOFError, ValueError) as e:
        print("keepalive %s answered=%d error=%r after=%.1fs" % (proto, ok, e, seconds - (end - time.time())))
        return 1
    print("keepalive %s answered=%d slowest_ms=%d" % (proto, ok, worst * 1000))
    return 0


def newclients(proto, ip, seconds):
    end = time.time() + seconds
    ok, retries, failed, worst = 0, 0, [], 0.0
    while time.time() < end:
        t = time.time()
        while True:
            phase = "connect"   # which step a failure happened in
            try:
                with connect(ip, PORT[proto], timeout=30) as s:
                    phase = "answer"
                    s.sendall(REQUEST[proto])
                    r = read_reply(s.makefile("rb"), proto)
                if r in ("200", "+PONG"):
                    ok += 1
                else:
                    failed.append(r)
                break
            except (OSError, EOFError) as e:
                # Refused (reset, or closed before an answer) is allowed while the guest is at
                # its limit; waiting more than 30 s for an answer is not.
                if time.time() - t > 30:
                    failed.append("%s: %r" % (phase, e))
                    break
                retries += 1
                time.sleep(0.5)
        worst = max(worst, time.time() - t)
        time.sleep(0.5)
    print("newclients %s answered=%d retries=%d slowest_ms=%d failed=%d %s"
          % (proto, ok, retries, worst * 1000, len(failed), failed[:3]))
    return 0 if ok > 0 and not failed else 1


def trickle(proto, ip, n, seconds):
    socks, refused = {}, 0
    request = REQUEST[proto].replace(b"\r\n\r\n", b"\r\nX-Slow: ") if proto == "http" else b"SET slow "
    for i in range(n):
        try:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((ip, PORT[proto]))
            socks[s] = [time.time(), 0, None]   # opened, bytes sent, closed after (s)
        except OSError:
            refused += 1
    end = time.time() + seconds
    while time.time() < end:
        live = [s for s, st in socks.items() if st[2] is None]
        if not live:
            break
        r, _, _ = select.select(live, [], [], 1.0)
        for s in r:   # readable: an answer (408, error) or the close
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                socks[s][2] = time.time() - socks[s][0]
        for s in live:
            st = socks[s]
            if st[2] is not None:
                continue
            try:
                st[1] += s.send(request[st[1] % len(request):][:1] or b"a")
            except BlockingIOError:
                pass
            except OSError:
                st[2] = time.time() - st[0]
    closed = sorted(st[2] for st in socks.values() if st[2] is not None)
    for s in socks:
        s.close()
    print("trickle %s opened=%d refused=%d closed_by_server=%d first_close_s=%.1f last_close_s=%.1f"
          % (proto, len(socks), refused, len(closed), closed[0] if closed else -1,
             closed[-1] if closed else -1))
    return 0


def unread(proto, ip, seconds):
    t = time.time()
    while True:   # the trickling flood may hold every slot for a while: retry, as a client would
        try:
            s = connect(ip, PORT[proto])
            break
        except OSError:
            if time.time() - t > 30:
                raise
            time.sleep(0.5)
    s.settimeout(0.5)
    sent, stalled = 0, 0
    end = time.time() + seconds
    req = REQUEST[proto]
    while time.time() < end:
        try:
            sent += s.send(req[sent % len(req):][:1])
        except socket.timeout:
            stalled += 1   # the guest closed its window: the intended way to push back
        except OSError as e:
            print("unread %s sent=%d closed_by_server=%r" % (proto, sent, e))
            return 0
    s.close()
    print("unread %s sent_bytes=%d stalled_sends=%d" % (proto, sent, stalled))
    return 0


def resp(*words):
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


def fill(ip, kib):
    value = b"v" * (kib * 1024)
    n, answer = 0, ""
    with connect(ip, 6379, timeout=60) as s:
        f = s.makefile("rb")
        while n < 100000:
            key = b"fill:%d" % n
            s.sendall(resp(b"SET", key, value))
            answer = read_reply(f, "redis")
            if answer != "+OK":
                break
            n += 1
    print("fill stored=%d kib_each=%d then=%r" % (n, kib, answer))
    return 0 if answer.startswith(("-OOM", "-ERR")) else 1


def unreadbig(ip, n, key, seconds):
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect: a small window
        s.settimeout(10)
        s.connect((ip, 6379))
        s.sendall(resp(b"GET", key.encode()) * 2)
        socks.append(s)
    print("unreadbig opened=%d" % len(socks), flush=True)
    time.sleep(seconds)
    for s in socks:
        s.close()
    return 0


def getbig(ip, key, kib, limit):
    t = time.time()
    with connect(ip, 6379, timeout=limit) as s:
        s.sendall(resp(b"GET", key.encode()))
        f = s.makefile("rb")
        head = f.readline()
        body = f.read(kib * 1024 + 2) if head == b"$%d\r\n" % (kib * 1024) else b""
    took = time.time() - t
    ok = body == b"v" * (kib * 1024) + b"\r\n" and took <= limit
    print("getbig %s bytes=%d took_ms=%d %s" % (key, len(body), took * 1000, "ok" if ok else "FAILED " + repr(head)))
    return 0 if ok else 1


def ptb(guest, dom0, iface, mtu):
    import ipaddress, struct
    src, dst = ipaddress.IPv6Address(guest).packed, ipaddress.IPv6Address(dom0).packed
    tcp = struct.pack("!HHIIBBHHH", 80, 40000, 1, 1, 5 << 4, 0x18, 65535, 0, 0)
    quoted = struct.pack("!IHBB", 6 << 28, len(tcp), socket.IPPROTO_TCP, 64) + src + dst + tcp
    message = struct.pack("!BBHI", 2, 0, 0, mtu) + quoted   # type 2, code 0; Linux fills the checksum
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        s.bind((dom0, 0, 0, socket.if_nametoindex(iface)))
        s.sendto(message, (guest, 0, 0, socket.if_nametoindex(iface)))
    print("ptb mtu=%d to %s quoting %s -> %s" % (mtu, guest, guest, dom0))
    return 0


def mss(guest, dom0, iface, port):
    index = socket.if_nametoindex(iface)
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.bind((dom0, 0, 0, index))
        s.connect((guest, port, 0, index))
        print("mss %d" % s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "keepalive":
        return keepalive(argv[2], argv[3], float(argv[4]), argv[5] if len(argv) > 5 else None)
    if cmd == "newclients":
        return newclients(argv[2], argv[3], float(argv[4]))
    if cmd == "trickle":
        return trickle(argv[2], argv[3], int(argv[4]), float(argv[5]))
    if cmd == "unread":
        return unread(argv[2], argv[3], float(argv[4]))
    if cmd == "fill":
        return fill(argv[2], int(argv[3]))
    if cmd == "unreadbig":
        return unreadbig(argv[2], int(argv[3]), argv[4], float(argv[5]))
    if cmd == "getbig":
        return getbig(argv[2], argv[3], int(argv[4]), float(argv[5]))
    if cmd == "ptb":
        return ptb(argv[2], argv[3], argv[4], int(argv[5]))
    if cmd == "mss":
        return mss(argv[2], argv[3], argv[4], int(argv[5]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
