#!/bin/bash
# Runs in dom0: the same keel images as classic PV (NAME-pv.xl) and as PVH (NAME.xl), on the same
# host in the same run (issue 13). Each row is the median of its repetitions, with a _range row
# (min..max) beside it. Prints KEEL-BENCH lines; bench/compare.sh pv turns them into a table with
# the ratio pv / pvh. Never asserts.
source /scenario/lib.sh
source /scenario/bench-lib.sh   # bench, stats, BENCH_REPS
REPS=$BENCH_REPS
ip=10.0.0.2
cfg() { [ "$1" = pv ] && echo "/scenario/apps/$2-pv.xl" || echo "/scenario/apps/$2.xl"; }

bench image_bytes pv "$(cat /scenario/keel-image-bytes)"
bench image_bytes pvh "$(cat /scenario/keel-image-bytes)"

for mode in pv pvh; do
    # hello: xl create to the kernel's first line ("keel on Xen ...": the same line in both
    # modes; PV writes earlier lines to the ring, PVH to the debug port), and entry to service
    # start by the guest's own clock.
    firsts=() entries=()
    for i in $(seq "$REPS"); do
        name="hello-$mode-$i"
        xl_create "$(cfg $mode hello)" "name=\"$name\"" "${BENCH_PLACE[@]}"
        t0=$KEEL_CREATED_MS
        poll 20 grep -q 'keel on Xen' "$(guest_log "$name")" || fail "$name printed nothing"
        firsts+=("$(elapsed "$t0")")
        entries+=("$(grep -oE 'service starting \(([0-9]+) us after entry\)' "$(guest_log "$name")" | grep -oE '[0-9]+' | head -1)")
        wait_gone "$name" 20
    done
    stats create_to_first_line_ms $mode "${firsts[@]}"
    stats entry_to_service_us $mode "${entries[@]}"

    # The smallest memory = (MiB) hello boots in and powers off from.
    smallest=NA
    for m in 1 2 3 4 5 6 8; do
        name="hello-$mode-m$m"
        if xl create "$(cfg $mode hello)" "name=\"$name\"" "memory=$m" "${BENCH_PLACE[@]}" >/dev/null 2>&1 &&
            poll 20 grep -q 'powering off' "$(guest_log "$name")"; then
            smallest=$m
            wait_gone "$name" 20 >/dev/null
            break
        fi
        xl destroy "$name" >/dev/null 2>&1 || true
    done
    bench hello_smallest_memory_mib $mode $smallest

    # httpd: wrk, keep-alive, REPS runs of 10 s.
    xl_create "$(cfg $mode httpd)" 'name="httpd"' "${BENCH_PLACE[@]}"
    wait_until 60 "httpd ($mode) answers" bash -c "curl -s -o /dev/null --max-time 1 http://$ip/"
    rates=()
    for i in $(seq "$REPS"); do
        out=$(wrk -t 2 -c 20 -d 10s "http://$ip:80/" 2>&1)
        rates+=("$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")")
        [ -n "${rates[-1]}" ] || echo "$out" | sed "s/^/    [$mode] wrk: /"
        echo "    [$mode] wrk run $i: ${rates[-1]} requests/s"
    done
    stats httpd_wrk_requests_per_s $mode "${rates[@]}"
    xl_destroy httpd

    # kvstore: redis-benchmark SET and GET (durable SET: the disk's flush before each answer).
    disk=/tmp/pvbench-$mode.img
    rm -f $disk
    truncate -s 64M $disk
    xl_create "$(cfg $mode kvstore)" 'name="kvstore"' "disk=[\"format=raw,vdev=xvda,access=rw,target=$disk\"]" "${BENCH_PLACE[@]}"
    wait_until 60 "kvstore ($mode) PING" bash -c "redis-cli -h $ip PING 2>/dev/null | grep -q PONG"
    sets=() gets=()
    for i in $(seq "$REPS"); do
        out=$(timeout 600 redis-benchmark -h $ip -t set,get -n 5000 -q 2>&1 | tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests')
        sets+=("$(awk '/^SET:/ {print $2}' <<<"$out")")
        gets+=("$(awk '/^GET:/ {print $2}' <<<"$out")")
        echo "    [$mode] redis-benchmark run $i: SET ${sets[-1]}/s GET ${gets[-1]}/s"
    done
    stats kvstore_set_ops_per_s $mode "${sets[@]}"
    stats kvstore_get_ops_per_s $mode "${gets[@]}"
    xl_destroy kvstore
    rm -f $disk
done
pass "pv bench"
