#!/bin/bash
# Runs in dom0: keel's kvstore against a Linux PVH guest running Debian's redis-server
# (appendonly, appendfsync always: every write durable before its answer, as kvstore does), each
# on an identical raw disk. Prints KEEL-BENCH lines; bench/compare.sh turns them into a table.
# Raw disk throughput is bench/disk.
source /scenario/lib.sh
source /scenario/linux-guest/lib.sh
ip=10.0.0.2
WATCH=
N=${BENCH_REQUESTS:-10000}
BIG=${BENCH_BIG_REQUESTS:-500}
disk=/tmp/bench-disk.img
new_disk() { rm -f $disk; truncate -s 256M $disk; }
disk_cfg() { echo "disk=[\"format=raw,vdev=xvda,access=rw,target=$disk\"]"; }

# rb ARGS...: "SET-rate GET-rate" of one redis-benchmark run (bounded: a Linux guest that dies
# mid-run stops it at once, see watched; any other hang after 600 s).
rb() {
    watched "$WATCH" timeout 600 redis-benchmark -h $ip -t set,get -q "$@" 2>&1 | tr '\r' '\n' |
        awk '/^SET: [0-9.]+ requests/ {s = $2} /^GET: [0-9.]+ requests/ {g = $2}
             END {print (s == "" ? "NA" : s), (g == "" ? "NA" : g)}'
}
mb() { awk -v r="$1" 'BEGIN { if (r == "NA") print "NA"; else printf "%.2f", r * 65536 / 1e6 }'; }

# one_round: redis-benchmark from dom0, SET and GET: small values with 50 clients
# (redis-benchmark's default), the same pipelined (-P 8, 20 clients), and 64 KiB values with 4
# clients (bulk: where GSO counts). Leaves the six rates in R.
one_round() {
    local a b c d e f
    read -r a b < <(rb -n "$N")
    read -r c d < <(rb -n "$N" -P 8 -c 20)
    read -r e f < <(rb -n "$BIG" -d 65536 -c 4)
    R="$a $b $c $d $(mb "$e") $(mb "$f")"
}

# redis SYSTEM: BENCH_REPS rounds; each row is their median.
redis() {
    local sys=$1 i a b c d e f set=() get=() pset=() pget=() bset=() bget=()
    for i in $(seq "$BENCH_REPS"); do
        if [ "$sys" = linux ]; then
            WATCH=redis linux_round redis start_linux one_round || { echo "    [linux] round $i: lost 3 guests"; continue; }
        else
            one_round
        fi
        read -r a b c d e f <<<"$R"
        set+=("$a") get+=("$b") pset+=("$c") pget+=("$d") bset+=("$e") bget+=("$f")
        echo "    [$sys] round $i: SET $a/s GET $b/s; pipelined SET $c/s GET $d/s; 64 KiB SET $e MB/s GET $f MB/s"
    done
    stats set_ops_per_s "$sys" "${set[@]}"
    stats get_ops_per_s "$sys" "${get[@]}"
    stats set_pipelined_ops_per_s "$sys" "${pset[@]}"
    stats get_pipelined_ops_per_s "$sys" "${pget[@]}"
    stats set_64k_MB_per_s "$sys" "${bset[@]}"
    stats get_64k_MB_per_s "$sys" "${bget[@]}"
}

start_linux() {
    local cfg
    new_disk
    cfg=$(linux_xl redis 256 "bench.ip=$ip/24 bench.svc=redis" 'vif = ["bridge=xenbr0"]'           "disk = [\"format=raw,vdev=xvda,access=rw,target=$disk\"]")
    xl_create "$cfg"
    poll 180 bash -c "redis-cli -h $ip PING 2>/dev/null | grep -q PONG" || return 1
    ! grep -q 'no disk' "$(guest_log redis)" || fail "the Linux guest found no disk"
}

# Linux first, keel second (the order of the earlier runs).
# ---- Linux ----
linux_initrd
linux_boot redis start_linux || fail "no Linux redis guest came up"
redis linux
linux_crashes kvstore
xl_destroy redis
# ---- keel ----
new_disk
xl_create kvstore "$(disk_cfg)"
wait_guest_log kvstore 'kvstore: serving on port 6379' 90
wait_until 20 "kvstore PING" bash -c "redis-cli -h $ip PING | grep -q PONG"
redis keel
xl_destroy kvstore
pass "kvstore benchmark"
