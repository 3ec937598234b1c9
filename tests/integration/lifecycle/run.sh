#!/bin/bash
# Issue 12, phase 1: `xl save -c` (suspend, then cancelled: the same domain runs on), `xl save` +
# `xl restore` (resumed in a new domain). First with `hello wait`, which has no frontends: after
# each, the guest says how the suspend ended and what its monotonic clock read before and after,
# console input still reaches it (event channel + console ring), and at the end `xl shutdown`
# still stops it (xenstore ring, event channel and the control/shutdown watch). Then `httpd`:
# netfront reconnects to the new domain's backend and the server answers again.
source /scenario/lib.sh

save=/var/tmp/hello.save
log=$(guest_log hello)

# "[  12.345678] ..." -> 12345678 (us), for the clock checks.
stamp_us() { sed -E 's/^\[ *([0-9]+)\.([0-9]{6})\].*/\1\2/' <<<"$1" | sed 's/^0*//'; }

# Every console line's timestamp is at least the one before: keel's clock never went back.
check_monotonic() {
    local prev=0 line t n=0
    while IFS= read -r line; do
        line=${line%%$'\r'}
        [[ $line =~ ^\[\ *[0-9]+\.[0-9]{6}\] ]] || continue
        t=$(stamp_us "$line"); t=${t:-0}
        (( t >= prev )) || fail "guest clock went backwards: $prev us, then: $line"
        prev=$t; n=$((n + 1))
    done <"$log"
    log "monotonic over $n console lines (last at $prev us)"
}

# The "resumed: ..." line says "monotonic clock A s before, B s after"; B >= A.
check_resume_line() {  # $1: outcome text
    local line before after
    line=$(grep -a "resumed: $1" "$log" | tail -n 1) || fail "no 'resumed: $1' line"
    before=$(sed -E 's/.*monotonic clock ([0-9]+)\.([0-9]+) s before.*/\1\2/' <<<"$line" | sed 's/^0*//')
    after=$(sed -E 's/.*s before, ([0-9]+)\.([0-9]+) s after.*/\1\2/' <<<"$line" | sed 's/^0*//')
    (( ${after:-0} >= ${before:-0} )) || fail "clock went back over the suspend: $line"
    log "$(sed -E 's/^.*(resumed: )/\1/' <<<"${line%%$'\r'}")"
}

console_ping() {  # $1: text typed on the guest's console
    local tty
    tty=$(xenstore-read "/local/domain/$(xl domid hello)/console/tty") || fail "no console tty in xenstore"
    echo "$1" >"$tty"
    wait_guest_log hello "console input: $1" 20
}

xl_create hello 'cmdline="wait"'
wait_guest_log hello 'waiting for xl shutdown' 20
id=$(xl domid hello)
check xenstore-read "/local/domain/$id/control/feature-suspend"

# ---- xl save -c: a checkpoint; the domain suspends and then runs on
t0=$(now_ms)
check xl save -c hello "$save.c"
timing save_checkpoint "$(elapsed "$t0")"
wait_guest_log hello 'resumed: cancelled' 20
[ "$(xl domid hello)" = "$id" ] || fail "xl save -c: hello is not domain $id any more"
check_resume_line cancelled
console_ping "ping after the checkpoint"
pass "xl save -c: suspended, cancelled, the same domain runs on and hears its console"

# ---- xl save, xl restore: a new domain
t0=$(now_ms)
check xl save hello "$save"
timing save "$(elapsed "$t0")"
xl domid hello >/dev/null 2>&1 && fail "xl save left hello running"
ls -l "$save"
t0=$(now_ms)
check xl restore "$save"
timing restore "$(elapsed "$t0")"
wait_guest_log hello 'resumed: new domain' 30
timing restore_to_resumed_line "$(elapsed "$t0")"
new=$(xl domid hello)
[ "$new" != "$id" ] || fail "xl restore: hello kept domain id $id"
check_resume_line "new domain"
wait_guest_log hello 'xenstore: reconnected' 10
check xenstore-read "/local/domain/$new/control/feature-suspend"
console_ping "ping after the restore"
pass "xl restore: resumed in domain $new (was $id), console and xenstore reconnected"

# ---- and once more, from the restored domain
t0=$(now_ms)
check xl save -c hello "$save.c2"
timing save_checkpoint_after_restore "$(elapsed "$t0")"
poll 20 bash -c "[ \$(grep -ac 'resumed: cancelled' '$log') -ge 2 ]" || fail "no second 'resumed: cancelled'"
console_ping "ping after the second checkpoint"
check_monotonic
pass "a checkpoint of the restored domain works too; the clock never went back"

# ---- xl shutdown reaches the restored domain through its new xenstore connection.
# The domain then stays in state "shutdown": xl's process that applies on_poweroff exits when the
# domain suspends ("Domain has suspended. Done. Exiting now" in xl-hello.log), so after an
# `xl save -c` nobody destroys it (xl 4.17's handle_domain_death; docs/lifecycle.md).
t0=$(now_ms)
check xl shutdown hello
wait_state hello shutdown 30
timing shutdown_to_shutdown_state "$(elapsed "$t0")"
check grep -aF 'powering off' "$log"
xl_destroy hello
pass "xl shutdown stopped the restored hello cleanly"

# ---- httpd: after xl restore netfront connects to the new domain's backend (same MAC)
ip=10.0.0.2
start_httpd $ip 60 httpd_create_to_ping
check curl -sS --max-time 10 -o /dev/null http://$ip/
hlog=$(guest_log httpd)
hid=$(xl domid httpd)
t0=$(now_ms)
check xl save httpd /var/tmp/httpd.save
timing httpd_save "$(elapsed "$t0")"
t0=$(now_ms)
check xl restore /var/tmp/httpd.save
timing httpd_restore "$(elapsed "$t0")"
wait_guest_log httpd 'resumed: new domain' 30
wait_guest_log httpd 'has a new backend; connecting' 30
wait_until 60 "httpd answers after the restore" curl -sS --max-time 5 -o /dev/null http://$ip/
timing httpd_restore_to_answer "$(elapsed "$t0")"
[ "$(xl domid httpd)" != "$hid" ] || fail "httpd kept domain id $hid"
body=$(curl -sS --max-time 10 http://$ip/) || fail "curl failed after the restore"
grep -q 'Hello from keel' <<<"$body" || fail "curl: unexpected page after the restore"
log "$(grep -a 'xenbus: device/vif' "$hlog" | tail -n 3 | tr -d '\r')"
pass "httpd answers after xl save + xl restore (netfront reconnected to the new backend)"
xl_destroy httpd
