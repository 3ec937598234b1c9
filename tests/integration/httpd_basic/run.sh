#!/bin/bash
# httpd on dom0's bridge under light traffic (the load test is ../httpd): ping, curl 200 and
# the page, HEAD / 404 / 405, /metrics parses, malformed requests each get a 4xx while the
# server keeps serving, xl shutdown powers it off; the sampling profiler reports under load.
source /scenario/lib.sh
ip=10.0.0.2
start_httpd $ip 60 create_to_ping
check ping -c 3 -W 2 $ip
pass "ping"

body=$(curl -sS --max-time 10 -w '\n%{http_code}' http://$ip/) || fail "curl failed"
[ "$(tail -n1 <<<"$body")" = 200 ] || fail "curl: status $(tail -n1 <<<"$body")"
grep -q 'Hello from keel' <<<"$body" || fail "curl: unexpected page"
pass "curl GET / is 200 with the page"
head=$(curl -sS -I --max-time 10 http://$ip/index.html) || fail "curl -I failed"
grep -qi '^content-length:' <<<"$head" || fail "HEAD without Content-Length"
[ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/nope)" = 404 ] || fail "missing page is not 404"
[ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' -X POST http://$ip/)" = 405 ] || fail "POST is not 405"
pass "HEAD, 404, 405"

metrics=$(curl -sS --max-time 10 http://$ip/metrics) || fail "no /metrics"
bad=$(grep -vE '^(# (HELP|TYPE) .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+-]+)$' <<<"$metrics" | head -3)
[ -z "$bad" ] || fail "/metrics has malformed lines: $bad"
grep -q '^keel_http_requests_total' <<<"$metrics" || fail "/metrics lacks keel_http_requests_total"
pass "/metrics parses"

# Malformed requests, one connection each, one at a time, between good ones.
long=$(head -c 9000 /dev/zero | tr '\0' a)
n=0
for req in 'GARBAGE\r\n\r\n' 'GET / HTTP/1.1\r\n\r\n' "GET /$long HTTP/1.1\r\nHost: x\r\n\r\n" \
           "GET / HTTP/1.1\r\nHost: x\r\nX: $long\r\n\r\n" 'DELETE /index.html HTTP/1.1\r\nHost: x\r\n\r\n'; do
    status=$(timeout 20 bash -c 'exec 3<>/dev/tcp/$0/80 && printf "$1" >&3 && head -n1 <&3' $ip "$req" 2>/dev/null | awk '{print $2}')
    [[ $status == 4?? ]] || fail "malformed request $((n + 1)) got '${status:-nothing}', not a 4xx"
    [ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] || fail "no 200 after malformed request $((n + 1))"
    n=$((n + 1))
done
pass "$n malformed requests got a 4xx; the server kept serving"

# xenctx from dom0 with the image's symbol map (README, "Debug from dom0"): the vCPU's rip and
# a call trace that names keel's functions.
ctx=$(timeout 120 /usr/lib/xen-4.17/bin/xenctx -s /scenario/apps/httpd.map -f -n 16 "$(xl domid httpd)" 0 2>&1) ||
    fail "xenctx failed: $ctx"
grep -E '^rip:|Call Trace' -A10 <<<"$ctx" | head -16 | sed 's/^/    | /'
grep -qE '^rip: [0-9a-f]+ [_a-zA-Z]' <<<"$ctx" || fail "xenctx gave rip no symbol"
grep -qE '\[<[0-9a-f]+>\] keel' <<<"$ctx" || fail "xenctx's call trace names no keel function"
[ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] || fail "no 200 after xenctx"
pass "xenctx -s httpd.map -f: rip and call trace symbolized; httpd still serves"

check xl shutdown httpd
wait_gone httpd 30
grep -q 'httpd: stopping' "$(guest_log httpd)" || fail "httpd did not stop on xl shutdown"
pass "xl shutdown powers httpd off"


# The sampling profiler (docs/profiling.md): profile=250 added to the command line, load from
# wrk, then `xl sysrq httpd p`: the report counts its samples and names keel's functions.
cmd=$(sed -nE 's/^cmdline = "(.*)"$/\1/p' /scenario/apps/httpd.xl)
xl_create httpd "cmdline=\"$cmd profile=250\""
wait_guest_log httpd 'profile: sampling at 250 Hz' 60
wait_guest_log httpd 'httpd: serving on port 80' 60
wait_until 20 "ping answers" ping -c 1 -W 1 $ip
wrk -t1 -c4 -d10s http://$ip:80/ >/tmp/wrk-profile.out 2>&1 || { cat /tmp/wrk-profile.out; fail "wrk failed"; }
check xl sysrq httpd p
wait_guest_log httpd 'profile: top stacks' 20
plog=$(guest_log httpd)
sed -n '/profile: [0-9]* samples/,$p' "$plog" | tr -d '\r' | head -45 | sed 's/^/    | /'
samples=$(grep -aoE 'profile: [0-9]+ samples' "$plog" | tail -n 1 | grep -oE '[0-9]+')
[ "${samples:-0}" -ge 500 ] || fail "only ${samples:-0} samples over more than 10 s at 250 Hz"
named=$(grep -acE '[0-9]\.[0-9]% +[0-9]+  0x[0-9a-f]+ [A-Za-z_(]' "$plog")
[ "$named" -ge 3 ] || fail "the report names only $named functions"
[ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] || fail "no 200 after the profile"
pass "profile=250: $samples samples, $named functions named in the report; httpd still serves"
check xl shutdown httpd
wait_gone httpd 30
