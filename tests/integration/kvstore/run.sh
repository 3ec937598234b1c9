#!/bin/bash
# kvstore with a raw disk and a vif: answers match a real redis-server (run in dom0), /metrics
# on port 9100 parses and moves with the commands, 1000 keys survive a hard kill (xl destroy),
# redis-benchmark runs clean, a read-only disk is refused.
source /scenario/lib.sh
ip=10.0.0.2
disk=/tmp/kv.img
truncate -s 64M $disk
# Every client call is bounded: a guest that stops answering fails the check, not the run.
rcli() { timeout 60 redis-cli -h $ip "$@"; }
disk_cfg() { echo "disk=[\"format=raw,vdev=xvda,access=$1,target=$disk\"]"; }

xl_create kvstore "$(disk_cfg rw)"
wait_guest_log kvstore 'kvstore: serving on port 6379' 60
wait_until 20 "redis PING" bash -c "timeout 5 redis-cli -h $ip PING | grep -q PONG"
pass "kvstore answers PING"

# The same commands against a real Redis in dom0 and against kvstore: the same answers.
redis-server --port 6390 --save '' --appendonly no --daemonize yes --logfile /tmp/redis.log ||
    fail "dom0's redis-server did not start"
wait_until 10 "dom0 redis" bash -c "redis-cli -p 6390 PING | grep -q PONG"
cat > /tmp/cmds <<'CMDS'
SET greeting hello
GET greeting
GET missing
SET counter 41
INCR counter
DECR counter
INCR greeting
EXISTS greeting missing counter
MSET a 1 b 2 c 3
MGET a b missing c
DEL a b missing
EXISTS a b c
ECHO "hi there"
SET big 9223372036854775807
INCR big
SET tmp v EX 100
GET tmp
DBSIZE
PING
NOSUCHCOMMAND x
GET
SET k
CMDS
redis-cli -p 6390 FLUSHALL >/dev/null
want=$(redis-cli -p 6390 < /tmp/cmds 2>&1)
got=$(rcli < /tmp/cmds 2>&1)
if [ "$want" != "$got" ]; then
    diff <(echo "$want") <(echo "$got") | head -40
    fail "kvstore's answers differ from redis-server's"
fi
pass "$(wc -l < /tmp/cmds) commands answer as a real Redis does"
keys_want=$(redis-cli -p 6390 KEYS '*' | sort)
keys_got=$(rcli KEYS '*' | sort)
[ "$keys_want" = "$keys_got" ] || fail "KEYS * differs: want [$keys_want] got [$keys_got]"
redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true

# /metrics on port 9100 (metrics-port's default): every component's families and kvstore's own,
# in the Prometheus text format, and they move with the commands.
metrics() { curl -sS --max-time 10 http://$ip:9100/metrics; }
metric() { awk -v n="$1" '$1 == n { print $2 }' <<<"$2"; }
m1=$(metrics) || fail "no /metrics on port 9100"
bad=$(grep -vE '^(# (HELP|TYPE) .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+-]+)$' <<<"$m1" | head -3)
[ -z "$bad" ] || fail "/metrics on port 9100 has malformed lines: $bad"
for f in keel_uptime_seconds keel_heap_in_use_bytes keel_heap_headroom_bytes keel_netfront_rx_packets_total \
         keel_net_rx_frames_total keel_tcp_open_connections keel_tcp_accepted_total keel_console_dropped_bytes_total \
         keel_kvstore_commands_total keel_kvstore_keys keel_kvstore_memory_used_bytes keel_kvstore_memory_max_bytes \
         keel_kvstore_log_commits_total keel_http_requests_total; do
    [ -n "$(metric $f "$m1")" ] || fail "/metrics on port 9100 lacks $f"
done
grep -qE '^keel_blkfront_writes_total\{device="[^"]+"\} [0-9]+$' <<<"$m1" || fail "/metrics lacks keel_blkfront_writes_total{device=...}"
rcli SET metrics:a 1 >/dev/null && rcli INCR metrics:a >/dev/null && rcli GET metrics:a >/dev/null || fail "redis-cli before /metrics"
m2=$(metrics) || fail "no /metrics on port 9100 (second scrape)"
c1=$(metric keel_kvstore_commands_total "$m1") c2=$(metric keel_kvstore_commands_total "$m2")
[ "$c2" -ge $((c1 + 3)) ] || fail "keel_kvstore_commands_total went from $c1 to $c2 over 3 commands"
[ "$(metric keel_kvstore_keys "$m2")" = "$(rcli DBSIZE)" ] || fail "keel_kvstore_keys $(metric keel_kvstore_keys "$m2") is not DBSIZE $(rcli DBSIZE)"
l1=$(metric keel_kvstore_log_commits_total "$m1") l2=$(metric keel_kvstore_log_commits_total "$m2")
[ "$l2" -gt "$l1" ] || fail "keel_kvstore_log_commits_total did not move over two writes ($l1 -> $l2)"
[ "$(metric keel_http_requests_total "$m2")" -gt "$(metric keel_http_requests_total "$m1")" ] || fail "keel_http_requests_total did not count the scrape"
# Bad input on the metrics port gets what httpd gives it.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Host:' http://$ip:9100/metrics)
[ "$code" = 400 ] || fail "an HTTP/1.1 request without Host on port 9100 got $code, not 400"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://$ip:9100/nope)
[ "$code" = 404 ] || fail "GET /nope on port 9100 got $code, not 404"
pass "/metrics on port 9100: $(grep -c '^# TYPE' <<<"$m2") families; keel_kvstore_commands_total $c1 -> $c2, log commits $l1 -> $l2; 400/404 as httpd"

# 1000 keys, then a hard kill, then the same disk again.
rcli FLUSHALL | grep -q OK || fail "FLUSHALL"
seq 1 1000 | awk '{print "SET key:" $1 " value-" $1}' | rcli > /tmp/set.out
[ "$(grep -c '^OK$' /tmp/set.out)" = 1000 ] || fail "not every SET was acknowledged: $(sort /tmp/set.out | uniq -c | head)"
xl destroy kvstore
wait_gone kvstore 20
xl_create kvstore "$(disk_cfg rw)"
wait_guest_log kvstore 'kvstore: serving on port 6379' 60
wait_until 30 "redis PING after the restart" bash -c "timeout 5 redis-cli -h $ip PING | grep -q PONG"
grep -E 'kvstore|log' "$(guest_log kvstore)" | tail -n 5
[ "$(rcli DBSIZE)" = 1000 ] || fail "after the restart DBSIZE is $(rcli DBSIZE), not 1000"
seq 1 1000 | awk '{print "GET key:" $1}' | rcli > /tmp/get.out
seq 1 1000 | awk '{print "value-" $1}' | cmp -s - /tmp/get.out || fail "values differ after the restart"
pass "1000 acknowledged keys survive xl destroy"

# GSO both ways: a 400 KB value goes in (dom0's TCP sends super-segments, netfront takes them
# whole) and comes back (keel merges its segments into super-segments). Without GSO no frame on
# the vif exceeds 1514 bytes, so bytes per packet above that in dom0's counters for the vif
# prove super-segments crossed it.
vif=/sys/class/net/vif$(xl domid kvstore).0/statistics
vif_count() { echo $(( $(cat $vif/${1}_bytes) )) $(( $(cat $vif/${1}_packets) )); }
head -c 300000 /dev/urandom | base64 -w0 > /tmp/big
read -r in_b0 in_p0 < <(vif_count tx)    # dom0 -> guest
set_ok=$(rcli -x SET big < /tmp/big)
read -r in_b1 in_p1 < <(vif_count tx)
read -r out_b0 out_p0 < <(vif_count rx)  # guest -> dom0
rcli GET big > /tmp/big.out
read -r out_b1 out_p1 < <(vif_count rx)
[ "$set_ok" = OK ] || fail "SET of a $(wc -c < /tmp/big)-byte value: $set_ok"
tr -d '\n' < /tmp/big.out | cmp -s - /tmp/big || fail "the big value came back different"
per_in=$(( (in_b1 - in_b0) / (in_p1 - in_p0) ))
per_out=$(( (out_b1 - out_b0) / (out_p1 - out_p0) ))
log "SET: $((in_b1 - in_b0)) bytes in $((in_p1 - in_p0)) frames to the guest; GET: $((out_b1 - out_b0)) bytes in $((out_p1 - out_p0)) frames from it"
[ "$per_in" -gt 1514 ] || fail "dom0 -> guest: $per_in bytes per frame: no GSO super-segments"
[ "$per_out" -gt 1514 ] || fail "guest -> dom0: $per_out bytes per frame: no GSO super-segments"
grep -q 'netfront: .*gso tx on rx on' "$(guest_log kvstore)" || fail "netfront did not report GSO on"
pass "a $(wc -c < /tmp/big)-byte value round-trips; frames of $per_in (in) and $per_out (out) bytes on average: GSO both ways"

out=$(timeout 600 redis-benchmark -h $ip -t set,get -n 20000 -q 2>&1) || fail "redis-benchmark failed: $out"
echo "$out" | tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests'
grep -qiE 'error|refused|reset' <<<"$out" && fail "redis-benchmark saw errors: $out"
[ "$(echo "$out" | tr '\r' '\n' | grep -cE '^(SET|GET): .*requests per second')" = 2 ] || fail "redis-benchmark did not finish: $out"
pass "redis-benchmark -t set,get -n 20000: no errors"
# The event loop's stack after all of the above (link.ld sizes it; boot paints it): used, and
# not to its end.
m3=$(metrics) || fail "no /metrics after redis-benchmark"
size=$(metric keel_stack_bytes "$m3")
peak=$(metric keel_stack_peak_bytes "$m3")
[ -n "$size" ] && [ -n "$peak" ] || fail "/metrics lacks keel_stack_bytes or keel_stack_peak_bytes"
[ "$peak" -gt 0 ] && [ "$peak" -lt "$size" ] || fail "stack peak $peak of $size bytes"
pass "stack: $peak of $size bytes used at most"
# What the guest cost Xen: every event wakes it through SCHEDOP_poll (sched_op) and its
# drivers notify their backends (event_channel_op); ports are polled, so serving raises no
# upcall (only the profiler's timer does, and this guest does not profile). A classic PV guest
# takes one at boot, for what was pending before its ports were masked.
hc() { metric "keel_xen_hypercalls_total{op=\"$1\"}" "$2"; }
redis-cli -h $ip SET hypercalls counted >/dev/null && redis-cli -h $ip GET hypercalls >/dev/null ||
    fail "SET/GET before the second scrape"
m4=$(metrics) || fail "no /metrics after SET and GET"
for op in sched_op event_channel_op; do  # the same domain, two commands and a scrape apart
    a=$(hc $op "$m3") b=$(hc $op "$m4")
    [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] || fail "keel_xen_hypercalls_total{op=$op}: $a then $b"
done
up3=$(metric keel_xen_upcalls_total "$m3") up=$(metric keel_xen_upcalls_total "$m4")
[ -n "$up3" ] && [ "$up" = "$up3" ] && [ "$up" -le 1 ] ||
    fail "keel_xen_upcalls_total: $up3 then $up, want no upcall while serving (every port is polled)"
pass "hypercalls: sched_op $(hc sched_op "$m4"), event_channel_op $(hc event_channel_op "$m4"); upcalls $up (at boot)"
xl_destroy kvstore

# A read-only disk: reported, served as it is, and never written.
sum_before=$(md5sum < $disk)
xl_create kvstore "$(disk_cfg ro)" 'name="kvstore-ro"'
wait_guest_log kvstore-ro 'kvstore: serving on port 6379' 60
grep -E 'read-only' "$(guest_log kvstore-ro)" | sed 's/^/    | /'
grep -q 'the disk is read-only: serving' "$(guest_log kvstore-ro)" || fail "the read-only disk was not reported"
wait_until 30 "redis PING (read-only)" bash -c "timeout 5 redis-cli -h $ip PING | grep -q PONG"
[ "$(rcli GET key:500)" = value-500 ] || fail "GET on the read-only disk: $(rcli GET key:500)"
got=$(rcli SET key:500 changed)
[[ $got == READONLY* ]] || fail "SET on the read-only disk answered: $got"
[ "$(rcli GET key:500)" = value-500 ] || fail "the refused SET changed the value"
xl_destroy kvstore-ro
[ "$(md5sum < $disk)" = "$sum_before" ] || fail "the read-only disk image changed"
pass "a read-only disk is reported, served, refuses writes (READONLY) and is left unchanged"
