#!/bin/bash
# Hostile clients against httpd and kvstore (issue 11): a flood of trickling connections past the
# guest's limits, tiny segments on a connection whose replies are never read, and (kvstore)
# memory exhaustion by SETs followed by new connections. Meanwhile a client connected before the
# attack and new clients during it keep getting answers, and both guests stay up.
source /scenario/lib.sh
ip=10.0.0.2
hostile() { timeout 300 python3 /scenario/hostile.py "$@"; }
no_panic() {
    ! grep -Eq 'PANIC|panic:|fault at|out of memory \(operator new' "$(guest_log "$1")" ||
        { grep -E -B2 -A8 'PANIC|panic:|fault at' "$(guest_log "$1")" | head -40; fail "$1 crashed"; }
    [[ $(dom_state "$1") != *c* ]] || fail "$1 is in state crashed"
}

# attack PROTO SECONDS: the well-behaved clients run for SECONDS while the attackers run.
attack() {
    local proto=$1 secs=$2 rc=0
    rm -f /tmp/keepalive.ready
    hostile keepalive "$proto" $ip "$secs" /tmp/keepalive.ready > /tmp/keepalive.out 2>&1 & local keep=$!
    wait_until 30 "the $proto keep-alive client's first answer" test -e /tmp/keepalive.ready
    hostile trickle "$proto" $ip 300 "$((secs - 5))" > /tmp/trickle.out 2>&1 & local trickle=$!
    hostile unread "$proto" $ip "$((secs - 5))" > /tmp/unread.out 2>&1 & local unread=$!
    sleep 3
    hostile newclients "$proto" $ip "$((secs - 10))" > /tmp/new.out 2>&1 & local new=$!
    wait $keep || rc=1
    wait $new || rc=2
    wait $trickle $unread   # only these: a caller's own background client must stay its own
    cat /tmp/keepalive.out /tmp/new.out /tmp/trickle.out /tmp/unread.out | sed 's/^/    | /'
    [ $rc = 0 ] || fail "$proto: a well-behaved client went unanswered during the attack"
}

# trickled_out NAME: the guest closed (deadline) or refused (limit) nearly all 300 tricklers.
trickled_out() {
    local closed
    closed=$(sed -n 's/.*closed_by_server=\([0-9]*\).*/\1/p' /tmp/trickle.out)
    [ "${closed:-0}" -ge 250 ] || fail "$1 closed only ${closed:-0} of 300 trickling connections (deadline or limit)"
    pass "$1 closed or refused $closed of 300 trickling connections on its own"
}

# ---- httpd ---------------------------------------------------------------------------------
start_httpd $ip 30 create_to_serving
attack http 60
no_panic httpd
pass "httpd: 300 trickling connections and an unread tiny-segment stream; the keep-alive client and new clients were answered throughout"
trickled_out httpd
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://$ip/)" = 200 ] || fail "httpd does not answer after the attack"
curl -s --max-time 10 http://$ip/metrics | grep -E '^keel_http_(connections|requests)_.*(refused|timeout|timed_out)' | sed 's/^/    | /'
xl_destroy httpd

# ---- kvstore -------------------------------------------------------------------------------
disk=/tmp/kv.img
truncate -s 128M $disk
xl_create kvstore "disk=[\"format=raw,vdev=xvda,access=rw,target=$disk\"]"
wait_guest_log kvstore 'kvstore: serving on port 6379' 60
wait_until 20 "redis PING" bash -c "timeout 5 redis-cli -h $ip PING | grep -q PONG"
timeout 30 redis-cli -h $ip SET before attack | grep -q OK || fail "SET before the attack"

hostile keepalive redis $ip 120 /tmp/keep-kv.ready > /tmp/keep-kv.out 2>&1 & keep=$!
wait_until 30 "the first redis client's first answer" test -e /tmp/keep-kv.ready
out=$(hostile fill $ip 512) || { echo "$out"; fail "filling kvstore with 512 KiB values did not end in a clear refusal"; }
log "$out"
grep -q 'OOM' <<<"$out" || fail "kvstore's refusal is not -OOM: $out"
hostile newclients redis $ip 10 | sed 's/^/    | /'
[ "${PIPESTATUS[0]}" = 0 ] || fail "new connections after memory exhaustion were not answered"
no_panic kvstore
pass "kvstore full: SETs answered -OOM, new connections still answered"
[ "$(timeout 30 redis-cli -h $ip GET before)" = attack ] || fail "a key stored before the exhaustion is gone"
timeout 60 redis-cli -h $ip FLUSHALL | grep -q OK || fail "FLUSHALL after the exhaustion"
timeout 30 redis-cli -h $ip SET after flush | grep -q OK || fail "SET after FLUSHALL was refused"
attack redis 45
trickled_out kvstore
wait $keep || { cat /tmp/keep-kv.out; fail "the redis connection opened before the exhaustion was dropped"; }
cat /tmp/keep-kv.out | sed 's/^/    | /'
no_panic kvstore
[ "$(timeout 30 redis-cli -h $ip GET after)" = flush ] || fail "kvstore lost a key during the attack"
pass "kvstore: exhaustion, trickling flood and unread stream survived; the first connection was answered throughout"
xl_destroy kvstore
