#!/bin/bash
# Runs in dom0: keel's httpd against a Linux PVH guest (Debian's kernel + nginx-light) serving
# the same page. Prints KEEL-BENCH lines; bench/compare.sh turns them into a table.
source /scenario/lib.sh
source /scenario/linux-guest/lib.sh
keel_ip=10.0.0.2
linux_ip=10.0.0.3
WRK_SECONDS=${WRK_SECONDS:-20}

# first_200 IP LIMIT_S: wait for an HTTP 200, print ms since $KEEL_CREATED_MS (or fail).
first_200() {
    local deadline=$(( $(now_ms) + $2 * 1000 ))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$1/")" = 200 ]; then
            elapsed "$KEEL_CREATED_MS"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# load SYSTEM IP: wrk from dom0; requests/s and p99 latency (ms).
load() {
    local out p99
    out=$(wrk -t 2 -c 20 -d "${WRK_SECONDS}s" --latency "http://$2:80/" 2>&1)
    echo "$out" | sed "s/^/    [$1] /"
    bench requests_per_s "$1" "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    bench p99_latency_ms "$1" "$(awk -v v="$p99" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }')"
    grep -q 'Socket errors\|Non-2xx' <<<"$out" && bench wrk_errors "$1" "$(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' ' | tr '\n' ';')"
    return 0
}

# smallest MEMORIES... : the first size (descending) whose guest does not serve ends the search.
# Uses start_guest SIZE / stop_guest, set per system.
smallest() {
    local best=NA
    for m in "$@"; do
        if start_guest "$m" && first_200 "$ip" "$limit" >/dev/null; then best=$m; else stop_guest; break; fi
        stop_guest
    done
    echo "$best"
}

# ---- keel ----
bench image_bytes keel "$(cat /scenario/keel-image-bytes)"   # without DWARF (see build.sh)
xl_create httpd
ms=$(first_200 $keel_ip 60) || fail "keel httpd never answered"
bench create_to_first_200_ms keel "$ms"
mkdir -p /tmp/www
curl -s -o /tmp/www/index.html "http://$keel_ip/" || fail "cannot fetch keel's page"
load keel $keel_ip
xl_destroy httpd
ip=$keel_ip limit=30
start_guest() { xl create /scenario/apps/httpd.xl 'name="httpd-m"' "memory=$1" >/dev/null 2>&1 && KEEL_CREATED_MS=$(now_ms); }
stop_guest() { xl destroy httpd-m >/dev/null 2>&1; wait_gone httpd-m 20 >/dev/null; }
bench smallest_memory_mib keel "$(smallest 32 16 12 8 6 5 4 3 2)"

# ---- Linux + nginx ----
linux_initrd /tmp/www
bench image_bytes linux "$(linux_image_bytes)"
cfg=$(linux_xl nginx 256 "bench.ip=$linux_ip/24 bench.svc=nginx" 'vif = ["bridge=xenbr0"]')
xl_create "$cfg"
ms=$(first_200 $linux_ip 120) || { tail -n 30 "$(guest_log nginx)"; fail "Linux nginx never answered"; }
bench create_to_first_200_ms linux "$ms"
cmp -s /tmp/www/index.html <(curl -s "http://$linux_ip/") || fail "nginx serves a different page"
load linux $linux_ip
xl_destroy nginx
ip=$linux_ip limit=120
start_guest() {
    local c
    c=$(linux_xl nginx-m "$1" "bench.ip=$linux_ip/24 bench.svc=nginx" 'vif = ["bridge=xenbr0"]')
    xl create "$c" >/dev/null 2>&1 && KEEL_CREATED_MS=$(now_ms)
}
stop_guest() { xl destroy nginx-m >/dev/null 2>&1; wait_gone nginx-m 30 >/dev/null; }
bench smallest_memory_mib linux "$(smallest 256 128 96 64 48 40 32)"
pass "httpd benchmark"
