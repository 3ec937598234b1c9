#!/bin/bash
# Runs in dom0: xl save, xl restore and xl migrate (to this same host) of keel's httpd and of a
# Linux PVH guest serving the same page (Debian's kernel + nginx-light), REPS times each, and
# how long the service does not answer during a migration (pause.py: the longest gap between
# two answers of a request loop, a new connection per request). Prints KEEL-BENCH lines: per
# row the median, and a _range row (min..max); bench/compare.sh lifecycle makes the table.
source /scenario/lib.sh
source /scenario/linux-guest/lib.sh
REPS=$BENCH_REPS
# Both guests get the same memory: save, restore and migrate copy it all. Not more than dom0
# (1 GiB, its files in RAM) can hold as a save file beside everything else: at 256 MiB the
# Linux guest's save failed there.
MEMORY=${MEMORY:-128}
keel_ip=10.0.0.2
linux_ip=10.0.0.3

# answers IP LIMIT_S: wait for an HTTP 200 (or fail).
answers() { wait_until "$2" "$1 answers" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 http://$1:80/)\" = 200 ]"; }

# cycle SYSTEM NAME IP: REPS times save + restore, then REPS migrations.
cycle() {
    local sys=$1 name=$2 ip=$3 t0 save=() size=() restore=() back=() migrate=() pause=() failed=() out i
    for i in $(seq "$REPS"); do
        t0=$(now_ms)
        out=$(xl save "$name" /var/tmp/bench.save 2>&1) || { echo "$out" | tail -n 5; fail "$sys: xl save failed"; }
        save+=("$(elapsed "$t0")")
        size+=("$(( $(stat -c %s /var/tmp/bench.save) / 1048576 ))")
        t0=$(now_ms)
        out=$(xl restore /var/tmp/bench.save 2>&1) || { echo "$out" | tail -n 5; fail "$sys: xl restore failed"; }
        restore+=("$(elapsed "$t0")")
        answers "$ip" 120
        back+=("$(elapsed "$t0")")
        rm -f /var/tmp/bench.save
    done
    for i in $(seq "$REPS"); do
        rm -f /tmp/pause.stop
        python3 /scenario/pause.py "$ip" /tmp/pause.stop >/tmp/pause.out &
        sleep 2
        t0=$(now_ms)
        out=$(xl migrate -s '' "$name" 'xl migrate-receive' 2>&1) || { echo "$out"; fail "$sys: xl migrate failed"; }
        migrate+=("$(elapsed "$t0")")
        answers "$ip" 120
        sleep 2
        touch /tmp/pause.stop
        wait
        read -r p f </tmp/pause.out
        pause+=("$p")
        failed+=("$f")
    done
    stats xl_save_ms "$sys" "${save[@]}"
    stats save_file_mib "$sys" "${size[@]}"
    stats xl_restore_ms "$sys" "${restore[@]}"
    stats restore_to_answer_ms "$sys" "${back[@]}"
    stats xl_migrate_ms "$sys" "${migrate[@]}"
    stats migrate_no_answer_ms "$sys" "${pause[@]}"
}

# ---- keel ----
xl_create httpd "memory=$MEMORY" "${BENCH_PLACE[@]}"
answers $keel_ip 60
bench memory_mib keel "$MEMORY"
cycle keel httpd $keel_ip
xl_destroy httpd

# ---- Linux + nginx ----
mkdir -p /tmp/www
echo '<html><body>bench</body></html>' >/tmp/www/index.html
linux_initrd /tmp/www
bench memory_mib linux "$MEMORY"
cfg=$(linux_xl nginx "$MEMORY" "bench.ip=$linux_ip/24 bench.svc=nginx" 'vif = ["bridge=xenbr0"]')
xl_create "$cfg"
answers $linux_ip 180
cycle linux nginx $linux_ip
linux_crashed nginx && LINUX_CRASHES=1
linux_crashes lifecycle
xl_destroy nginx
