#!/bin/bash
# Runs in dom0: the sampling profiler (docs/profiling.md) on httpd under wrk and on kvstore
# under redis-benchmark: each guest starts with profile=PROFILE_HZ, takes the load, then
# `xl sysrq NAME p` prints its report, copied here. A measurement, never a test.
#   bench/compare.sh profile       (the table is empty; the reports are in the console log)
source /scenario/lib.sh
HZ=${PROFILE_HZ:-250}
ip=10.0.0.2

report() {  # NAME: ask for the report and print it
    local log
    log=$(guest_log "$1")
    xl sysrq "$1" p || fail "xl sysrq $1 p failed"
    wait_log "$log" 'profile: top stacks' 30
    sleep 1
    echo "---- profile of $1 ($2)"
    sed -n '/profile: [0-9]* samples/,$p' "$log" | tr -d '\r' | sed -E 's/^\[ *[0-9.]+\] info: //'
}

# cpu_share NAME SECONDS: the CPU dom0 and guest NAME used over SECONDS of the load (xentop's
# second sample covers exactly that span), as a share of one CPU: where the time goes beyond
# the guest, which its own profile cannot show.
cpu_share() {
    sleep 2
    xentop -b -d "$2" -i 2 2>/dev/null | awk -v n="$1" '$1 == "Domain-0" || $1 == n {s[$1] = $4}
        END {printf "    [xentop] CPU over the load: Domain-0 %s%%, %s %s%%\n", s["Domain-0"], n, s[n]}'
}

cmdline_of() { sed -nE 's/^cmdline = "(.*)"$/\1/p' "/scenario/apps/$1.xl"; }

# ---- httpd under wrk (keep-alive, 4 connections, 20 s)
xl_create httpd "cmdline=\"$(cmdline_of httpd) profile=$HZ\""
wait_guest_log httpd 'httpd: serving on port 80' 60
wait_until 20 "ping answers" ping -c 1 -W 1 $ip
cpu_share httpd 16 &
wrk -t1 -c4 -d20s http://$ip:80/ | sed 's/^/    [wrk] /'
wait
report httpd "wrk -t1 -c4 -d20s"
xl_destroy httpd

# ---- kvstore under redis-benchmark (SET and GET, pipelined by 8, 20 clients)
disk=/var/tmp/kv-profile.img
truncate -s 64M $disk
xl_create kvstore "cmdline=\"$(cmdline_of kvstore) profile=$HZ\"" \
    "disk=[\"format=raw,vdev=xvda,access=rw,target=$disk\"]"
wait_guest_log kvstore 'kvstore: serving on port 6379' 60
wait_until 20 "redis PING" bash -c "timeout 5 redis-cli -h $ip PING | grep -q PONG"
cpu_share kvstore 6 &
timeout 600 redis-benchmark -h $ip -t set,get -n 20000 -P 8 -c 20 -q | tr '\r' '\n' | grep -E 'requests per second' |
    sed 's/^/    [redis-benchmark] /'
wait
report kvstore "redis-benchmark -t set,get -n 20000 -P 8 -c 20"
xl_destroy kvstore
