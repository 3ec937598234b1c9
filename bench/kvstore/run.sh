#!/bin/bash
# Runs in dom0: keel's kvstore against a Linux PVH guest running Debian's redis-server
# (appendonly, appendfsync always: every write durable before its answer, as kvstore does), each
# on an identical raw disk. Prints KEEL-BENCH lines; bench/compare.sh turns them into a table.
# Raw disk throughput is bench/disk.
source /scenario/lib.sh
source /scenario/linux-guest/lib.sh
ip=10.0.0.2
N=${BENCH_REQUESTS:-20000}
BIG=${BENCH_BIG_REQUESTS:-500}
disk=/tmp/bench-disk.img
new_disk() { rm -f $disk; truncate -s 256M $disk; }
disk_cfg() { echo "disk=[\"format=raw,vdev=xvda,access=rw,target=$disk\"]"; }

# redis SYSTEM: redis-benchmark SET and GET from dom0: small values with 50 clients (as
# redis-benchmark's default), then 64 KiB values with 4 clients (bulk: where GSO counts).
redis() {
    local out
    out=$(timeout 900 redis-benchmark -h $ip -t set,get -n "$N" -q 2>&1 | tr '\r' '\n')
    out=$(grep -E '^(SET|GET): [0-9.]+ requests' <<<"$out")
    echo "$out" | sed "s/^/    [$1] /"
    bench set_ops_per_s "$1" "$(awk '/^SET:/ {print $2}' <<<"$out")"
    bench get_ops_per_s "$1" "$(awk '/^GET:/ {print $2}' <<<"$out")"
    out=$(timeout 600 redis-benchmark -h $ip -t set,get -d 65536 -c 4 -n "$BIG" -q 2>&1 | tr '\r' '\n')
    out=$(grep -E '^(SET|GET): [0-9.]+ requests' <<<"$out")
    echo "$out" | sed "s/^/    [$1, 64 KiB values] /"
    bench set_64k_MB_per_s "$1" "$(awk '/^SET:/ {printf "%.2f", $2 * 65536 / 1e6}' <<<"$out")"
    bench get_64k_MB_per_s "$1" "$(awk '/^GET:/ {printf "%.2f", $2 * 65536 / 1e6}' <<<"$out")"
}


# Linux first, keel second (the order of the earlier runs).
# ---- Linux ----
linux_initrd
new_disk
cfg=$(linux_xl redis 256 "bench.ip=$ip/24 bench.svc=redis" 'vif = ["bridge=xenbr0"]' \
      "disk = [\"format=raw,vdev=xvda,access=rw,target=$disk\"]")
xl_create "$cfg"
wait_until 180 "Linux redis PING" bash -c "redis-cli -h $ip PING 2>/dev/null | grep -q PONG"
grep -q 'no disk' "$(guest_log redis)" && fail "the Linux guest found no disk"
redis linux
xl_destroy redis
# ---- keel ----
new_disk
xl_create kvstore "$(disk_cfg)"
wait_guest_log kvstore 'kvstore: serving on port 6379' 90
wait_until 20 "kvstore PING" bash -c "redis-cli -h $ip PING | grep -q PONG"
redis keel
xl_destroy kvstore
pass "kvstore benchmark"
