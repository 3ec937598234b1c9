#!/bin/bash
# kvstore with a raw disk and a vif, light traffic (what runs in CI; ../kvstore adds
# redis-benchmark and stays out of ctest while dom0 under network load is unreliable:
# docs/testbed.md): answers match a real redis-server (run in dom0), 1000 acknowledged keys
# survive a hard kill (xl destroy), a read-only disk is reported and refused.
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

xl_destroy kvstore

# A read-only disk: reported, and never written: kvstore refuses to run its log on it.
xl_create kvstore "$(disk_cfg ro)" 'name="kvstore-ro"'
wait_guest_log kvstore-ro 'read-only' 60
wait_guest_log kvstore-ro 'kvstore: cannot open the log' 30
grep -E 'read-only|cannot open' "$(guest_log kvstore-ro)" | sed 's/^/    | /'
pass "a read-only disk is reported and refused for the log"
xl_destroy kvstore-ro
