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
# rate "LINE": the MB/s figure of coreutils dd's summary or of diskbench's line.
rate() { grep -oE '[0-9.]+ MB/s' <<<"$1" | head -n1 | cut -d' ' -f1; }

linux_initrd
new_disk
cfg=$(linux_xl dd 256 "bench.svc=dd" "disk = [\"format=raw,vdev=xvda,access=rw,target=$disk\"]")
xl_create "$cfg"
wait_gone dd 300 || fail "the Linux dd guest did not finish"
grep -q 'bench-dd' "$(guest_log dd)" || { tail -n 25 "$(guest_log dd)"; fail "the Linux dd guest printed no result"; }
grep 'bench-dd' "$(guest_log dd)" | sed 's/^/    [linux] /'
bench disk_write_mb_per_s linux "$(rate "$(grep 'bench-dd write' "$(guest_log dd)")")"
bench disk_read_mb_per_s linux "$(rate "$(grep 'bench-dd read' "$(guest_log dd)")")"

new_disk
xl_create diskbench "$(disk_cfg)"
wait_gone diskbench 300 || fail "diskbench did not finish"
log_keel=$(guest_log diskbench)
grep 'diskbench:' "$log_keel" | sed 's/^/    [keel] /'
bench disk_write_mb_per_s keel "$(rate "$(grep 'diskbench: write' "$log_keel")")"
bench disk_read_mb_per_s keel "$(rate "$(grep 'diskbench: read' "$log_keel")")"

pass "disk benchmark"
