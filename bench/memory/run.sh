#!/bin/bash
# Runs in dom0: the smallest `memory =` (MiB) each service works in. hello: boots and powers
# off; httpd: GET / answers 200; kvstore (with a raw disk): PING, SET, GET. Each size is tried
# from large to small, until one fails; the failing guest's last console lines say why.
# Keel only (no Linux row): `bench/compare.sh memory` prints the table.
source /scenario/lib.sh
ip=10.0.0.2
disk=/tmp/kv.img

works() {   # works APP NAME: did guest NAME of APP do its job?
    case $1 in
    hello) poll 15 grep -q 'powering off' "$(guest_log "$2")" ;;
    httpd) poll 30 grep -q 'httpd: serving on port 80' "$(guest_log "$2")" &&
           poll 20 ping -c 1 -W 1 $ip >/dev/null &&
           [ "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' http://$ip/)" = 200 ] ;;
    kvstore) poll 30 grep -q 'kvstore: serving on port 6379' "$(guest_log "$2")" &&
             poll 20 bash -c "timeout 5 redis-cli -h $ip PING | grep -q PONG" &&
             [ "$(timeout 10 redis-cli -h $ip SET k v)" = OK ] &&
             [ "$(timeout 10 redis-cli -h $ip GET k)" = v ] ;;
    esac
}

smallest() {   # smallest APP SIZES...
    local app=$1 best=NA mem name extra=()
    shift
    for mem in "$@"; do
        name="$app-m$mem"
        extra=()
        if [ "$app" = kvstore ]; then
            rm -f $disk
            truncate -s 64M $disk
            extra=("disk=[\"format=raw,vdev=xvda,access=rw,target=$disk\"]")
        fi
        if xl create "$KEEL_APPS/$app.xl" "name=\"$name\"" "memory=$mem" "${extra[@]}" >/dev/null 2>&1 &&
           works "$app" "$name"; then
            best=$mem
            xl destroy "$name" >/dev/null 2>&1
            wait_gone "$name" 10
            continue
        fi
        echo "$app does not work in $mem MiB; its last console lines:"
        tail -n 4 "$(guest_log "$name")" 2>/dev/null | sed 's/^/    | /'
        xl destroy "$name" >/dev/null 2>&1
        wait_gone "$name" 10
        break
    done
    echo "KEEL-BENCH smallest_memory_mib_$app keel $best"
}

smallest hello 8 4 3 2 1
smallest httpd 32 16 8 6 4 3 2
smallest kvstore 64 32 16 12 8 6 4 3
