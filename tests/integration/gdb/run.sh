#!/bin/bash
# gdb from dom0 (README, "Debug from dom0"): keel-gdbserver attached to a running httpd; gdb in
# batch mode with httpd.xen's symbols shows a backtrace of keel's functions and reads httpd's
# request counter (the number of requests made); then continue, ^C and detach over the raw
# protocol (rsp_client.py) and from gdb itself, with httpd serving while continued and after.
source /scenario/lib.sh
ip=10.0.0.2
port=2345
command -v gdb >/dev/null || fail "no gdb in dom0 (testbed/build-host.sh DOM0_PACKAGES)"
[ -x /scenario/keel-gdbserver ] || fail "keel-gdbserver was not shipped (run-scenario.sh --file build/tools/gdbserver/keel-gdbserver)"
start_httpd $ip 60 create_to_ping
n=5
for i in $(seq $n); do
    [ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] || fail "request $i is not 200"
done
pass "$n requests served"
domid=$(xl domid httpd)

# start_gdbserver LOG: keel-gdbserver on $port in the background, once it listens.
start_gdbserver() {
    /scenario/keel-gdbserver "$domid" $port 2>"$1" &
    gs=$!
    wait_until 20 "keel-gdbserver listens" grep -q listening "$1"
}

start_gdbserver /tmp/gdbserver-1.log
t0=$(now_ms)
out=$(timeout 300 gdb -nx -batch -ex 'set pagination off' -ex "target remote 127.0.0.1:$port" \
    -ex bt -ex 'print keel_service_instance::instance.stats_.requests' \
    -ex 'printf "counter-at %lx\n", &keel_service_instance::instance.stats_.requests' \
    -ex detach /scenario/apps/httpd.xen 2>&1) || fail "gdb failed: $out"
timing gdb_attach_bt_detach "$(elapsed "$t0")"
wait $gs || fail "keel-gdbserver exited with $?: $(cat /tmp/gdbserver-1.log)"
sed 's/^/    | /' <<<"$out"
grep -qE '^#0 ' <<<"$out" || fail "gdb printed no backtrace"
grep -E '^#[0-9]+ ' <<<"$out" | grep -q ' keel::' || fail "the backtrace names no keel function"
if grep -E '^#[0-9]+ ' <<<"$out" | head -3 | grep -q ' in ?? '; then fail "the top of the backtrace is unsymbolized"; fi
grep -qx "\$1 = $n" <<<"$out" || fail "httpd's request counter is not $n"
pass "gdb: backtrace names keel functions, stats_.requests = $n, detached"
[ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] || fail "no 200 after gdb detached"
pass "httpd serves after the detach"

addr=$(awk '/^counter-at /{print $2}' <<<"$out")
start_gdbserver /tmp/gdbserver-2.log
timeout 120 python3 /scenario/rsp_client.py $port "$addr" $((n + 1)) http://$ip/ ||
    fail "raw protocol session failed"
wait $gs || fail "keel-gdbserver exited with $?: $(cat /tmp/gdbserver-2.log)"
pass "continue, ^C (S02) and detach; httpd served while continued"
[ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] || fail "no 200 after the second detach"
pass "httpd still serves"

# gdb's own continue and ^C (SIGINT to gdb, as a terminal's ^C): a request while continued,
# then the counter, n + 1 + 2 + 1 requests so far plus that one.
start_gdbserver /tmp/gdbserver-3.log
gdb -nx -batch -ex 'set pagination off' -ex "target remote 127.0.0.1:$port" -ex continue \
    -ex 'print keel_service_instance::instance.stats_.requests' -ex detach /scenario/apps/httpd.xen \
    >/tmp/gdb-3.out 2>&1 &
g=$!
wait_until 120 "gdb continued the guest" grep -q 'domain .* continued' /tmp/gdbserver-3.log
[ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] || fail "no 200 while gdb continues"
kill -INT $g
wait $g || fail "gdb failed: $(cat /tmp/gdb-3.out)"
wait $gs || fail "keel-gdbserver exited with $?: $(cat /tmp/gdbserver-3.log)"
sed 's/^/    | /' /tmp/gdb-3.out /tmp/gdbserver-3.log
grep -q 'SIGINT' /tmp/gdb-3.out || fail "gdb did not stop on SIGINT"
grep -qx "\$1 = $((n + 5))" /tmp/gdb-3.out || fail "the counter is not $((n + 5)) after continue"
[ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] || fail "no 200 after the third detach"
pass "gdb continue, ^C, counter $((n + 5)), detach; httpd served while continued and after"

check xl shutdown httpd
wait_gone httpd 30
pass "xl shutdown powers httpd off"
