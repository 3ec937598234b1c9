#!/bin/bash
# Runs in dom0: keel's httpd against a Linux PVH guest (Debian's kernel + nginx-light) serving
# the same page. Prints KEEL-BENCH lines; bench/compare.sh turns them into a table.
source /scenario/lib.sh
source /scenario/linux-guest/lib.sh
keel_ip=10.0.0.2
linux_ip=10.0.0.3
WRK_SECONDS=${WRK_SECONDS:-10}
AB_REQUESTS=${AB_REQUESTS:-2000}
WATCH=   # the Linux guest a round's clients watch (watched)

# first_200 IP LIMIT_S [NAME]: wait for an HTTP 200, print ms since $KEEL_CREATED_MS; false
# after LIMIT_S s, or as soon as the console of the Linux guest NAME shows a panic.
first_200() {
    local deadline=$(( $(now_ms) + $2 * 1000 ))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$1/")" = 200 ]; then
            elapsed "$KEEL_CREATED_MS"
            return 0
        fi
        [ -n "${3:-}" ] && linux_panicked "$3" && return 1
        sleep 0.1
    done
    return 1
}

# p99 "VALUE+UNIT" (wrk's latency line): milliseconds; NA without one (wrk failed).
to_ms() {
    awk -v v="$1" 'BEGIN { if (v == "") { print "NA"; exit } n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# http_round: wrk (keep-alive: requests/s, p99 latency) then ab (a new connection per request:
# requests/s) from dom0 against $IP (the guest $DOM), each with the guest's and dom0's CPU time per
# request, dom0's busy share (cpu_figures) and the client's own CPU time per request
# (client_cpu); leaves the eleven figures in R.
http_round() {
    local out rate p99 ab failed id s0 wrk_cpu ab_cpu n wk ak
    curl -s -o /dev/null --max-time 5 "http://$IP:80/"   # not measured: the first answer after a pause
    id=$(xl domid "$DOM" 2>/dev/null)
    s0=$(cpu_snap "$id")
    out=$(watched "$WATCH" wrk -t 2 -c 20 -d "${WRK_SECONDS}s" --latency "http://$IP:80/" 2>&1)
    n=$(awk '/ requests in / {print $1}' <<<"$out")
    wrk_cpu=$(cpu_figures "$s0" "$(cpu_snap "$id")" "$n")
    wk=$(client_cpu "$n")
    rate=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    grep -E 'Socket errors|Non-2xx' <<<"$out" | sed "s/^/    [$IP] wrk: /"
    s0=$(cpu_snap "$id")
    out=$(watched "$WATCH" timeout 300 ab -q -n "$AB_REQUESTS" -c 10 "http://$IP:80/" 2>&1)
    n=$(awk '/^Complete requests:/ {print $3}' <<<"$out")
    ab_cpu=$(cpu_figures "$s0" "$(cpu_snap "$id")" "$n")
    ak=$(client_cpu "$n")
    ab=$(awk '/^Requests per second:/ {print $4}' <<<"$out")
    # No rate: say why (seen once for the Linux guest, which had not crashed).
    [ -n "$ab" ] || tail -n 3 <<<"$out" | sed "s/^/    [$IP] ab gave no rate: /"
    failed=$(awk '/^Failed requests:/ {print $3}' <<<"$out")
    local wg wd wb ag ad ab_busy
    read -r wg wd wb <<<"$wrk_cpu"
    read -r ag ad ab_busy <<<"$ab_cpu"
    echo "    [$IP] wrk ${rate:-NA} requests/s, p99 $p99 ms; ab ${ab:-NA} requests/s, ${failed:-NA} failed;" \
        "CPU per request, guest / dom0 / client: wrk $wg / $wd / $wk us, ab $ag / $ad / $ak us;" \
        "dom0 busy: wrk $wb%, ab $ab_busy%"
    R="${rate:-NA} ${p99:-NA} ${ab:-NA} $wg $ag $wd $ad $wb $ab_busy $wk $ak"
}

# round SYSTEM: one http_round of SYSTEM, in its turn (turn); its figures recorded, NA for a
# round that lost 3 Linux guests.
round() {
    local IP=$keel_ip DOM=httpd
    [ "$1" = linux ] && IP=$linux_ip DOM=nginx
    turn "$1" httpd nginx start_nginx http_round || { echo "    [$1] round $i lost 3 guests"; R=$(yes NA | head -n 11 | paste -sd " "); }
    record "$1" "$R"
}

# smallest MEMORIES... : the first size (descending) whose guest does not serve ends the search.
# Uses start_guest SIZE (boots and waits for a 200) / stop_guest, set per system; the answer in
# SMALLEST (not a subshell: start_guest counts crashes).
smallest() {
    local best=NA
    for m in "$@"; do
        if start_guest "$m"; then best=$m; else stop_guest; break; fi
        stop_guest
    done
    SMALLEST=$best
}

# Both guests stay up through the load rounds and take turns (in_turns), the other one paused.
# ---- keel: boot, and the page Linux serves too ----
cpu_reader_start
bench image_bytes keel "$(cat /scenario/keel-image-bytes)"   # without DWARF (see build.sh)
xl_create httpd "${BENCH_PLACE[@]}"
ms=$(first_200 $keel_ip 60) || fail "keel httpd never answered"
bench create_to_first_200_ms keel "$ms"
mkdir -p /tmp/www
curl -s -o /tmp/www/index.html "http://$keel_ip/" || fail "cannot fetch keel's page"
hold httpd

# ---- Linux + nginx: boot ----
linux_initrd /tmp/www
bench image_bytes linux "$(linux_image_bytes)"
start_nginx() {
    local cfg
    cfg=$(linux_xl nginx 256 "bench.ip=$linux_ip/24 bench.svc=nginx $LINUX_PAUSED_CMDLINE" 'vif = ["bridge=xenbr0"]')
    xl_create "$cfg"
    ms=$(first_200 $linux_ip 120 nginx)
}
linux_boot nginx start_nginx || { tail -n 30 "$(guest_log nginx)"; fail "Linux nginx never answered"; }
bench create_to_first_200_ms linux "$ms"
cmp -s /tmp/www/index.html <(curl -s "http://$linux_ip/") || fail "nginx serves a different page"
hold nginx

# ---- the load, in turns ----
in_turns round
for sys in keel linux; do
    columns $sys wrk_requests_per_s wrk_p99_latency_ms ab_requests_per_s guest_cpu_us_per_wrk_request \
        guest_cpu_us_per_ab_request dom0_cpu_us_per_wrk_request dom0_cpu_us_per_ab_request \
        dom0_busy_pct_wrk dom0_busy_pct_ab client_cpu_us_per_wrk_request client_cpu_us_per_ab_request
done
xl_destroy httpd
xl_destroy nginx

# ---- the smallest memory of each ----
ip=$keel_ip limit=30
start_guest() {
    xl create /scenario/apps/httpd.xl 'name="httpd-m"' "memory=$1" "${BENCH_PLACE[@]}" >/dev/null 2>&1 && KEEL_CREATED_MS=$(now_ms) &&
        first_200 "$ip" "$limit" >/dev/null
}
stop_guest() { xl destroy httpd-m >/dev/null 2>&1; wait_gone httpd-m 20 >/dev/null; }
smallest 32 16 12 8 6 5 4 3 2
bench smallest_memory_mib keel "$SMALLEST"

ip=$linux_ip limit=120
start_guest() {   # a guest that panics (not one too small) is booted again, up to 3 times
    local c i
    c=$(linux_xl nginx-m "$1" "bench.ip=$linux_ip/24 bench.svc=nginx" 'vif = ["bridge=xenbr0"]')
    for i in 1 2 3; do
        xl create "$c" >/dev/null 2>&1 && KEEL_CREATED_MS=$(now_ms) && first_200 "$ip" "$limit" nginx-m >/dev/null && return 0
        linux_crashed nginx-m || return 1
        LINUX_CRASHES=$((LINUX_CRASHES + 1))
        echo "    [linux] nginx-m ($1 MiB) crashed while booting; booted again"
        stop_guest
        mv "$(guest_log nginx-m)" "$(guest_log nginx-m).crash$LINUX_CRASHES"
    done
    return 1
}
stop_guest() { xl destroy nginx-m >/dev/null 2>&1; wait_gone nginx-m 30 >/dev/null; }
smallest 256 128 96 64 48 40 32
bench smallest_memory_mib linux "$SMALLEST"
linux_crashes httpd
pass "httpd benchmark"
