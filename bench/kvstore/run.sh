#!/bin/bash
# Runs in dom0: keel's kvstore against a Linux PVH guest running Debian's redis-server
# (appendonly, appendfsync always: every write durable before its answer, as kvstore does), each
# on an identical raw disk of its own, both up at once and measured in turns. Prints KEEL-BENCH
# lines; bench/compare.sh turns them into a table. Raw disk throughput is bench/disk.
source /scenario/lib.sh
source /scenario/linux-guest/lib.sh
keel_ip=10.0.0.2
linux_ip=10.0.0.3
ip=             # the guest a round measures (rb): its address and domain name
dom=
WATCH=
N=${BENCH_REQUESTS:-10000}
BIG=${BENCH_BIG_REQUESTS:-500}
keel_disk=/tmp/bench-disk-keel.img
linux_disk=/tmp/bench-disk-linux.img
new_disk() { rm -f "$1"; truncate -s 256M "$1"; }
disk_cfg() { echo "disk=[\"format=raw,vdev=xvda,access=rw,target=$1\"]"; }

# rb N ARGS...: "SET-rate GET-rate CPU DOM0-CPU DOM0-BUSY CLIENT-CPU" of one redis-benchmark run
# of N SETs then N GETs: the guest's and dom0's CPU time per command in us and dom0's busy share
# over the run (cpu_figures), and the part of dom0's that redis-benchmark itself was charged
# (client_cpu); bounded: a Linux guest that dies mid-run stops it at once (watched), any other
# hang after 600 s.
rb() {
    local n=$1 s0 id rates
    shift
    id=$(xl domid "$dom" 2>/dev/null)
    s0=$(cpu_snap "$id")
    rates=$(watched "$WATCH" timeout 600 redis-benchmark -h $ip -t set,get -q -n "$n" "$@" 2>&1 | tr '\r' '\n' |
        awk '/^SET: [0-9.]+ requests/ {s = $2} /^GET: [0-9.]+ requests/ {g = $2}
             END {print (s == "" ? "NA" : s), (g == "" ? "NA" : g)}')
    # A run without both rates did not serve its 2N commands: no CPU figures either (0 requests).
    local ops=$((2 * n))
    [[ $rates == *NA* ]] && ops=0
    echo "$rates $(cpu_figures "$s0" "$(cpu_snap "$id")" $ops) $(client_cpu $ops)"
}
mb() { awk -v r="$1" 'BEGIN { if (r == "NA") print "NA"; else printf "%.2f", r * 65536 / 1e6 }'; }

# one_round: redis-benchmark from dom0, SET and GET: small values with 50 clients
# (redis-benchmark's default), the same pipelined (-P 8, 20 clients), and 64 KiB values with 4
# clients (bulk: where GSO counts). Leaves in R the six rates, then the guest's CPU time per
# command of the three runs (plain, pipelined, 64 KiB), then dom0's, then dom0's busy shares,
# then the client's CPU time per command.
one_round() {
    local a b c d e f ca cb cc da db dc ba bb bc ka kb kc
    timeout 10 redis-cli -h $ip PING >/dev/null 2>&1   # not measured: the first answer after a pause
    read -r a b ca da ba ka < <(rb "$N")
    read -r c d cb db bb kb < <(rb "$N" -P 8 -c 20)
    # Round 0 (in_turns' warm-up, not counted) sends at most 50 big values, not BIG: both disks
    # are files in dom0's /tmp (RAM), and each round of 500 adds about 31 MiB to the Linux one.
    local big=$BIG
    [ "$i" = 0 ] && [ "$BIG" -gt 50 ] && big=50
    read -r e f cc dc bc kc < <(rb "$big" -d 65536 -c 4)
    R="${a:-NA} ${b:-NA} ${c:-NA} ${d:-NA} $(mb "${e:-NA}") $(mb "${f:-NA}") ${ca:-NA} ${cb:-NA} ${cc:-NA}"
    R+=" ${da:-NA} ${db:-NA} ${dc:-NA} ${ba:-NA} ${bb:-NA} ${bc:-NA} ${ka:-NA} ${kb:-NA} ${kc:-NA}"
}

start_linux() {
    local cfg
    new_disk $linux_disk
    cfg=$(linux_xl redis 256 "bench.ip=$linux_ip/24 bench.svc=redis $LINUX_PAUSED_CMDLINE" 'vif = ["bridge=xenbr0"]' "$(disk_cfg $linux_disk)")
    xl_create "$cfg"
    linux_wait redis 180 bash -c "redis-cli -h $linux_ip PING 2>/dev/null | grep -q PONG" || return 1
    ! grep -q 'no disk' "$(guest_log redis)" || fail "the Linux guest found no disk"
}

# Both guests stay up through the bench, and take turns (in_turns): one round of one while the
# other is paused (xl pause: its vCPU gets no time at all).
round() {   # round SYSTEM: one_round of SYSTEM, in its turn (turn); its figures recorded
    local ip=$keel_ip dom=kvstore a b c d e f ca cb cc da db dc ba bb bc ka kb kc
    [ "$1" = linux ] && ip=$linux_ip dom=redis
    turn "$1" kvstore redis start_linux one_round || { echo "    [$1] round $i lost 3 guests"; R=$(yes NA | head -n 18 | paste -sd " "); }
    record "$1" "$R"
    read -r a b c d e f ca cb cc da db dc ba bb bc ka kb kc <<<"$R"
    echo "    [$1] round $i: SET $a/s GET $b/s; pipelined SET $c/s GET $d/s; 64 KiB SET $e MB/s GET $f MB/s;" \
        "CPU per command, guest / dom0 / client: $ca / $da / $ka us, pipelined $cb / $db / $kb us," \
        "64 KiB $cc / $dc / $kc us; dom0 busy $ba%, $bb%, $bc%"
}

cpu_reader_start
linux_initrd
linux_boot redis start_linux || fail "no Linux redis guest came up"
hold redis
new_disk $keel_disk
xl_create kvstore "$(disk_cfg $keel_disk)" "${BENCH_PLACE[@]}"
wait_guest_log kvstore 'kvstore: serving on port 6379' 90
wait_until 20 "kvstore PING" bash -c "redis-cli -h $keel_ip PING | grep -q PONG"
hold kvstore

in_turns round
for sys in linux keel; do
    columns $sys set_ops_per_s get_ops_per_s set_pipelined_ops_per_s get_pipelined_ops_per_s \
        set_64k_MB_per_s get_64k_MB_per_s guest_cpu_us_per_op guest_cpu_us_per_pipelined_op \
        guest_cpu_us_per_64k_op dom0_cpu_us_per_op dom0_cpu_us_per_pipelined_op dom0_cpu_us_per_64k_op \
        dom0_busy_pct_op dom0_busy_pct_pipelined_op dom0_busy_pct_64k_op \
        client_cpu_us_per_op client_cpu_us_per_pipelined_op client_cpu_us_per_64k_op
done
linux_crashes kvstore
# Both disks live in dom0's memory (/tmp) at once: what they came to.
echo "    [dom0] $(du -m $keel_disk $linux_disk | awk '{printf "%s %s MiB; ", $2, $1}')$(df -m /tmp | awk 'NR == 2 {print "/tmp free " $4 " MiB"}')"
xl_destroy redis
xl_destroy kvstore
pass "kvstore benchmark"
