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


def fill(ip, kib):
    value = b"v" * (kib * 1024)
    n, answer = 0, ""
    with connect(ip, 6379, timeout=60) as s:
        f = s.makefile("rb")
        while n < 100000:
            key = b"fill:%d" % n
            s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
            answer = read_reply(f, "redis")
            if answer != "+OK":
                break
            n += 1
    print("fill stored=%d kib_each=%d then=%r" % (n, kib, answer))
    return 0 if answer.startswith(("-OOM", "-ERR")) else 1


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
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
