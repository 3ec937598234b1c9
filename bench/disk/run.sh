#!/bin/bash
# Runs in dom0: raw sequential disk throughput, no network. keel's diskbench (blkfront through
# the block API: 64 MiB written in 1 MiB requests, flushed, read back and checked) against the
# Linux PVH guest's dd with O_DIRECT, each on an identical fresh raw disk. Prints KEEL-BENCH
# lines; bench/compare.sh turns them into a table.
source /scenario/lib.sh
source /scenario/linux-guest/lib.sh
disk=/tmp/bench-disk.img
new_disk() { rm -f $disk; truncate -s 256M $disk; }
disk_cfg() { echo "disk=[\"format=raw,vdev=xvda,access=rw,target=$disk\"]"; }
# dd_done: the Linux dd guest has powered off, or crashed (it stays, on_crash = "preserve").
dd_done() { ! xl domid dd >/dev/null 2>&1 || [[ $(dom_state dd) == *c* ]]; }
# rate "LINE": the MB/s figure of coreutils dd's summary or of diskbench's line.
rate() { grep -oE '[0-9.]+ MB/s' <<<"$1" | head -n1 | cut -d' ' -f1; }
# figures SYSTEM LOG PREFIX: record the write and read rates of LOG's "PREFIX write/read" lines
# (NA for one missing: a round that lost its guest).
figures() {
    local w r
    w=$(rate "$(grep "$3 write" "$2")")
    r=$(rate "$(grep "$3 read" "$2")")
    record "$1" "${w:-NA} ${r:-NA}"
}

# The Linux dd guest: dd_start boots one on a fresh disk; dd_round waits until it powered off
# (or crashed: linux_round then boots another and waits again).
dd_start() {
    xl destroy dd >/dev/null 2>&1 && wait_gone dd 30 >/dev/null   # one left from a lost round
    new_disk
    xl_create "$(linux_xl dd 256 "bench.svc=dd" "disk = [\"format=raw,vdev=xvda,access=rw,target=$disk\"]")"
}
# A guest still running after 300 s (seen: one spinning while it boots) is shown and destroyed:
# its round has no figure.
dd_round() {
    poll 300 dd_done && return 0
    echo "    [linux] dd did not finish in 300 s; its vCPU:"
    linux_vcpu dd
    linux_drop dd
}

# A round of the Linux dd guest, and one of keel's diskbench: each a fresh guest on a fresh disk.
linux_disk_round() {
    dd_start
    linux_round dd dd_start dd_round || echo "    [linux] round $i: lost 3 guests"
    log_linux=$(guest_log dd)
    grep 'bench-dd' "$log_linux" | sed "s/^/    [linux round $i] /"
    figures linux "$log_linux" 'bench-dd'
    mv "$log_linux" "$log_linux.$i"
}
keel_disk_round() {
    new_disk
    xl_create diskbench "$(disk_cfg)" "${BENCH_PLACE[@]}"
    wait_gone diskbench 300 || fail "diskbench did not finish"
    log_keel=$(guest_log diskbench)
    grep 'diskbench:' "$log_keel" | sed "s/^/    [keel round $i] /"
    figures keel "$log_keel" 'diskbench:'
    mv "$log_keel" "$log_keel.$i"
}

# In turns, as the other benches (in_turns).
disk_round() { "${1}_disk_round"; }
linux_initrd
in_turns disk_round
linux_crashes disk
for sys in linux keel; do columns $sys disk_write_mb_per_s disk_read_mb_per_s; done

pass "disk benchmark"
