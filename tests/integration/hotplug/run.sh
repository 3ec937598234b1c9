#!/bin/bash
# Issue 12, hot-plug: `xl network-attach` gives httpd a second interface, addressed from the
# vif's ip= (a /24), that answers ping and HTTP; `xl network-detach` closes it cleanly (the
# backend reaches Closed and libxl removes it; no node is left behind) while the first interface
# answers on, and the guest gets the vif's 2 MiB of pages back; attached again with the same ip=,
# libxl gives it the same id, and it comes up as a new interface at that address; then 7 more
# detach/attach rounds (10 attaches of the class in all: the registries once stopped at 8).
# Then kvstore with its disk: `xl block-attach` of a second disk shows up in the
# guest, `xl block-detach` of it closes cleanly, and `xl block-detach` of kvstore's own disk
# makes writes fail (the first one's connection dropped unacknowledged, later ones with an error
# reply; never a hang) while GET is still served from memory.
source /scenario/lib.sh

ip=10.0.0.2
ip2=10.0.1.2
# dom0's side of the second subnet, on the same bridge (testbed/dom0-init.sh gives xenbr0 only
# 10.0.0.1/24).
ip addr show dev xenbr0 | grep -q 'inet 10\.0\.1\.1/24' || check ip addr add 10.0.1.1/24 dev xenbr0

# ---- httpd: xl network-attach, ping + curl the new interface, xl network-detach
start_httpd $ip 60 httpd_create_to_ping
hlog=$(guest_log httpd)
id=$(xl domid httpd)
# The pages the guest has left (the heap and the drivers share them), from /metrics.
headroom() {
    curl -sS --max-time 10 http://$ip/metrics | awk '/^keel_heap_headroom_bytes / { print $2 }'
}
h0=$(headroom)
[ -n "$h0" ] || fail "no keel_heap_headroom_bytes in /metrics"
t0=$(now_ms)
check xl network-attach httpd ip=$ip2 bridge=xenbr0
timing network_attach_cmd "$(elapsed "$t0")"
wait_guest_log httpd 'netfront: device/vif/1: found' 30
wait_guest_log httpd "address $ip2/24 from the toolstack" 30
wait_guest_log httpd 'xenbus: device/vif/1: connected' 30
timing network_attach_to_connected "$(elapsed "$t0")"
wait_until 60 "ping $ip2" ping -c 1 -W 1 $ip2
timing network_attach_to_ping "$(elapsed "$t0")"
body=$(curl -sS --max-time 10 http://$ip2/) || fail "curl http://$ip2/ failed"
grep -q 'Hello from keel' <<<"$body" || fail "curl $ip2: unexpected page"
check curl -sS --max-time 10 -o /dev/null http://$ip/
log "$(grep -a 'net: en1' "$hlog" | tr -d '\r' | head -n 3)"
h1=$(headroom)
log "headroom: $h0 bytes before the attach, $h1 with vif 1"
[ $((h0 - h1)) -gt $((1536 * 1024)) ] || fail "vif 1 took $((h0 - h1)) bytes, not its ~2 MiB of pools"
pass "xl network-attach: en1 at $ip2 answers ping and HTTP; $ip still answers"

back=/local/domain/0/backend/vif/$id/1
t0=$(now_ms)
check xl network-detach httpd 1
timing network_detach_cmd "$(elapsed "$t0")"
wait_until 30 "backend $back removed" bash -c "! xenstore-read $back/state >/dev/null 2>&1"
timing network_detach_to_backend_gone "$(elapsed "$t0")"
wait_guest_log httpd 'netfront: device/vif/1: detached by the toolstack' 20
wait_guest_log httpd 'net: en1: its device is gone' 20
xenstore-read /local/domain/$id/device/vif/1/state >/dev/null 2>&1 &&
    fail "device/vif/1 is still in the guest's xenstore after the detach (a node rewritten?)"
# en1 stays registered (services may hold it), shut: down, without addresses
# (docs/lifecycle.md); nothing answers for its address any more.
ip neigh del $ip2 dev xenbr0 2>/dev/null || true
ping -c 1 -W 2 $ip2 >/dev/null 2>&1 && fail "$ip2 still answers after the detach"
check curl -sS --max-time 10 -o /dev/null http://$ip/
ping -c 1 -W 1 $ip >/dev/null || fail "$ip does not answer ping after the detach"
grep -a 'device/vif/1' "$hlog" | tr -d '\r' | tail -n 6 | sed 's/^/    | /'
h2=$(headroom)
log "headroom: $h2 bytes after the detach ($h0 before the attach)"
# Before, the detached vif kept its pools: h2 stayed about 2 MiB below h0.
[ $((h0 - h2)) -lt $((512 * 1024)) ] || fail "the detached vif kept $((h0 - h2)) bytes (its pools are ~2 MiB)"
pass "xl network-detach: vif 1 closed and removed, nothing left behind, its pages given back; $ip answers on"

# Attached again: libxl reuses the free id 1, and the address is free again (en1 dropped it).
attached=1
attach_vif1() {
    check xl network-attach httpd ip=$ip2 bridge=xenbr0
    attached=$((attached + 1))
    wait_until 30 "vif 1 found (attach $attached)" bash -c "[ \$(grep -ac 'netfront: device/vif/1: found' $hlog) -ge $attached ]"
    wait_until 30 "vif 1 connected (attach $attached)" bash -c "[ \$(grep -ac 'xenbus: device/vif/1: connected' $hlog) -ge $attached ]"
}
detach_vif1() {
    check xl network-detach httpd 1
    wait_until 30 "backend $back removed" bash -c "! xenstore-read $back/state >/dev/null 2>&1"
    wait_until 20 "vif 1 retired (detach $((attached)))" bash -c "[ \$(grep -ac 'its device is gone' $hlog) -ge $attached ]"
    ip neigh del $ip2 dev xenbr0 2>/dev/null || true
}
attach_vif1
wait_until 60 "ping $ip2" ping -c 1 -W 1 $ip2
body=$(curl -sS --max-time 10 http://$ip2/) || fail "curl http://$ip2/ failed"
grep -q 'Hello from keel' <<<"$body" || fail "curl $ip2: unexpected page"
pass "xl network-attach after the detach: vif 1 again, a new interface at the same $ip2 answers ping and HTTP"

t0=$(now_ms)
for round in 1 2 3 4 5 6 7; do
    detach_vif1
    attach_vif1
done
timing seven_detach_attach_rounds "$(elapsed "$t0")"
wait_until 60 "ping $ip2 after $attached attaches" ping -c 1 -W 1 $ip2
check curl -sS --max-time 10 -o /dev/null http://$ip2/
check curl -sS --max-time 10 -o /dev/null http://$ip/
h3=$(headroom)
log "headroom: $h3 bytes after $attached attaches of vif 1 ($h1 with the first)"
# What a detached vif keeps is its objects (~68 KiB: the driver's, the link's, lwIP's netif), not
# its pools (~2 MiB each: one kept pool alone is over this bound).
[ $((h1 - h3)) -lt $((1536 * 1024)) ] || fail "$((attached - 1)) detached vifs kept $((h1 - h3)) bytes"
pass "$attached attaches of vif 1 ($((attached + 1)) of the class): the last answers ping and HTTP; the detached ones kept $((h1 - h3)) bytes"
xl_destroy httpd

# ---- kvstore: xl block-attach / block-detach of a second disk, then of its own disk
kdisk=/var/tmp/hp-kv.img
disk2=/var/tmp/hp-disk2.img
rm -f $kdisk $disk2
truncate -s 64M $kdisk
truncate -s 16M $disk2
rcli() { timeout 60 redis-cli -h $ip "$@"; }
xl_create kvstore "disk=[\"format=raw,vdev=xvda,access=rw,target=$kdisk\"]"
klog=$(guest_log kvstore)
kid=$(xl domid kvstore)
wait_guest_log kvstore 'kvstore: serving on port 6379' 60
wait_until 20 "redis PING" bash -c "timeout 5 redis-cli -h $ip PING | grep -q PONG"
[ "$(rcli SET before-detach 1)" = OK ] || fail "SET before the detach"

# xvdb is device/vbd/51728 (io/blkif.h's Linux encoding: 202 << 8 | 16).
t0=$(now_ms)
check xl block-attach kvstore "format=raw,vdev=xvdb,access=rw,target=$disk2"
timing block_attach_cmd "$(elapsed "$t0")"
wait_guest_log kvstore 'blkfront: device/vbd/51728: found' 30
wait_guest_log kvstore 'xenbus: device/vbd/51728: connected' 30
timing block_attach_to_connected "$(elapsed "$t0")"
grep -a 'device/vbd/51728' "$klog" | tr -d '\r' | sed 's/^/    | /'
pass "xl block-attach: the second disk is found and connected in the guest"

t0=$(now_ms)
check xl block-detach kvstore xvdb
timing block_detach_cmd "$(elapsed "$t0")"
wait_until 30 "vbd 51728 backend removed" bash -c "! xenstore-read /local/domain/0/backend/vbd/$kid/51728/state >/dev/null 2>&1"
timing block_detach_to_backend_gone "$(elapsed "$t0")"
wait_guest_log kvstore 'device/vbd/51728: detached by the toolstack' 20
[ "$(rcli GET before-detach)" = 1 ] || fail "GET after detaching the second disk"
pass "xl block-detach of the second disk: closed and removed; kvstore serves on"

t0=$(now_ms)
check xl block-detach kvstore xvda
timing block_detach_own_disk_cmd "$(elapsed "$t0")"
wait_guest_log kvstore 'device/vbd/51712: detached by the toolstack' 20
t1=$(now_ms)
# The first write after the detach is the one whose log write fails: kvstore never acknowledges
# it and drops its connection (apps/kvstore/kv/conn.cc: "these replies must never be sent"),
# or answers an error if the failure was already known. Every later write gets an error reply.
# redis-cli exits 1 on an error reply or a reset; timeout's 124 would be the hang this checks for.
reply=$(rcli SET after-detach 2 2>&1) && rc=0 || rc=$?
timing set_after_detach_reply "$(elapsed "$t1")"
log "first SET after the detach: \"$reply\" (redis-cli status $rc)"
[ $rc -ne 124 ] || fail "SET after the disk was detached: no reply within 60 s"
[[ $reply == *ERR* || $reply == *"Connection reset"* ]] ||
    fail "SET after the disk was detached answered \"$reply\", neither an error nor a dropped connection"
t1=$(now_ms)
reply=$(rcli SET after-detach 3 2>&1) && rc=0 || rc=$?
timing second_set_after_detach_reply "$(elapsed "$t1")"
log "second SET after the detach: \"$reply\" (redis-cli status $rc)"
[[ $reply == *"ERR disk failed"* ]] || fail "the second SET after the detach answered \"$reply\", not ERR disk failed"
[ "$(rcli GET before-detach)" = 1 ] || fail "GET after the disk was detached"
grep -a 'kvstore: the disk failed' "$klog" | tr -d '\r' | head -n 1 | sed 's/^/    | /'
pass "xl block-detach of kvstore's disk: SET answers an error at once, GET is still served"
xl_destroy kvstore
rm -f $kdisk $disk2
