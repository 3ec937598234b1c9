#!/bin/bash
# httpd on dom0's bridge under load (the light checks are ../httpd_basic): ab, malformed requests
# beside a parallel wrk, then DHCP from dnsmasq in dom0.
source /scenario/lib.sh
ip=10.0.0.2
start_httpd $ip 30 create_to_serving
ab_out=$(ab -q -n 5000 -c 50 http://$ip/ 2>&1) || { echo "$ab_out"; fail "ab failed"; }
echo "$ab_out" | grep -E 'Requests per second|Failed requests|Complete requests'
grep -qE '^Failed requests: +0$' <<<"$ab_out" || fail "ab saw failed requests"
grep -qE '^Complete requests: +5000$' <<<"$ab_out" || fail "ab did not complete 5000"
pass "ab -n 5000 -c 50: 0 failed"

# 100 malformed requests, each must get a 4xx, while wrk runs alongside with no errors. One
# process sends them (10 at a time): forking 100 shells beside wrk crowded dom0 (docs/testbed.md).
cat > /tmp/send-bad.py <<'EOS'
import socket, sys, concurrent.futures
ip = sys.argv[1]
long = "a" * 9000
bad = [b"GARBAGE\r\n\r\n",                                            # 400
       b"GET / HTTP/1.1\r\n\r\n",                                     # no Host: 400
       ("GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % long).encode(),      # 414
       ("GET / HTTP/1.1\r\nHost: x\r\nX: %s\r\n\r\n" % long).encode(),  # 431
       b"DELETE /index.html HTTP/1.1\r\nHost: x\r\n\r\n"]              # 405
def send(i):
    try:
        with socket.create_connection((ip, 80), timeout=20) as s:
            s.sendall(bad[i % 5])
            line = s.makefile("rb").readline().split()
            return "%d %s" % (i, line[1].decode() if len(line) > 1 else "none")
    except OSError as e:
        return "%d error:%s" % (i, type(e).__name__)
with concurrent.futures.ThreadPoolExecutor(10) as pool:
    for r in pool.map(send, range(100)):
        print(r)
EOS
wrk -t 2 -c 10 -d 40s http://$ip:80/ > /tmp/wrk.out 2>&1 &
wrk_pid=$!
sleep 1
python3 /tmp/send-bad.py $ip > /tmp/bad.out
wait $wrk_pid
cat /tmp/wrk.out
not4xx=$(awk '$2 !~ /^4[0-9][0-9]$/' /tmp/bad.out)
[ "$(wc -l < /tmp/bad.out)" = 100 ] || fail "only $(wc -l < /tmp/bad.out) of 100 malformed requests were sent"
[ -z "$not4xx" ] || { echo "$not4xx" | head; curl -s --max-time 10 http://$ip/metrics | grep -E '^keel_(tcp|net|heap|http_ref)'; fail "$(wc -l <<<"$not4xx") malformed requests did not get a 4xx"; }
grep -q 'requests in' /tmp/wrk.out || fail "wrk did not run"
if grep -q 'Socket errors' /tmp/wrk.out; then fail "wrk saw socket errors"; fi
if grep -q 'Non-2xx' /tmp/wrk.out; then fail "wrk saw non-2xx responses"; fi
pass "100 malformed requests got 4xx while wrk saw no errors"
xl_destroy httpd

# DHCP: dnsmasq on the bridge hands out an address; the guest boots without ip=.
dnsmasq --interface=xenbr0 --bind-interfaces --dhcp-range=10.0.0.50,10.0.0.60,12h --port=0 \
    --dhcp-leasefile=/tmp/leases --pid-file=/tmp/dnsmasq.pid || fail "dnsmasq did not start"
xl_create httpd 'name="httpd-dhcp"' 'cmdline=""'
wait_guest_log httpd-dhcp 'httpd: serving on port 80' 60
addr=$(awk '{print $3}' /tmp/leases | head -n1)
[ -n "$addr" ] || fail "no DHCP lease recorded"
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://$addr/)" = 200 ] || fail "no 200 from the DHCP address $addr"
pass "DHCP address $addr serves"
xl_destroy httpd-dhcp
