#!/bin/bash
# Runs in dom0: keel's kvstore against a Linux PVH guest running Debian's redis-server
# (appendonly, appendfsync always: every write durable before its answer, as kvstore does), each
# on an identical raw disk; then raw sequential disk MB/s: keel's diskbench (blkfront through
# the block API) against the Linux guest's dd with O_DIRECT. Prints KEEL-BENCH lines;
# bench/compare.sh turns them into a table.
source /scenario/lib.sh
source /scenario/linux-guest/lib.sh
ip=10.0.0.2
N=${BENCH_REQUESTS:-20000}
disk=/tmp/bench-disk.img
new_disk() { rm -f $disk; truncate -s 256M $disk; }
disk_cfg() { echo "disk=[\"format=raw,vdev=xvda,access=rw,target=$disk\"]"; }

# redis SYSTEM: redis-benchmark SET and GET from dom0 (50 clients, as redis-benchmark's default).
redis() {
    local out
    out=$(redis-benchmark -h $ip -t set,get -n "$N" -q 2>&1 | tr '\r' '\n')
    out=$(grep -E '^(SET|GET): [0-9.]+ requests' <<<"$out")
    echo "$out" | sed "s/^/    [$1] /"
    bench set_ops_per_s "$1" "$(awk '/^SET:/ {print $2}' <<<"$out")"
    bench get_ops_per_s "$1" "$(awk '/^GET:/ {print $2}' <<<"$out")"
}

# dd_rate "LINE": MB/s from coreutils dd's summary or diskbench's line.
rate() { grep -oE '[0-9.]+ MB/s' <<<"$1" | head -n1 | cut -d' ' -f1; }

# Linux first: the keel rows are the ones under study (docs/testbed.md, "dom0 processes").
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
new_disk
cfg=$(linux_xl dd 256 "bench.svc=dd" "disk = [\"format=raw,vdev=xvda,access=rw,target=$disk\"]")
xl_create "$cfg"
wait_gone dd 300 || fail "the Linux dd guest did not finish"
grep 'bench-dd' "$(guest_log dd)" | sed 's/^/    [linux] /'
bench disk_write_mb_per_s linux "$(rate "$(grep 'bench-dd write' "$(guest_log dd)")")"
bench disk_read_mb_per_s linux "$(rate "$(grep 'bench-dd read' "$(guest_log dd)")")"
# ---- keel ----
new_disk
xl_create kvstore "$(disk_cfg)"
wait_guest_log kvstore 'kvstore: serving on port 6379' 90
wait_until 20 "kvstore PING" bash -c "redis-cli -h $ip PING | grep -q PONG"
redis keel
xl_destroy kvstore
new_disk
xl_create diskbench "$(disk_cfg)"
wait_gone diskbench 300 || fail "diskbench did not finish"
log_keel=$(guest_log diskbench)
grep 'diskbench:' "$log_keel" | sed 's/^/    [keel] /'
bench disk_write_mb_per_s keel "$(rate "$(grep 'diskbench: write' "$log_keel")")"
bench disk_read_mb_per_s keel "$(rate "$(grep 'diskbench: read' "$log_keel")")"

pass "kvstore benchmark"
