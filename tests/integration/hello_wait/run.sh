#!/bin/bash
# `hello wait` stays up until `xl shutdown`, then the service stops and the guest powers off
# cleanly; `xl reboot` restarts it (on_reboot = "restart").
source /scenario/lib.sh
xl_create hello 'cmdline="wait"'
wait_guest_log hello 'waiting for xl shutdown' 10
sleep 1
dom_state hello | grep -q '[rb]' || fail "hello is not running: $(dom_state hello)"
check xenstore-read "/local/domain/$(xl domid hello)/control/feature-poweroff"
# Console input: what dom0 types on the guest's console pty reaches the service.
tty=$(xenstore-read "/local/domain/$(xl domid hello)/console/tty") || fail "no console tty in xenstore"
echo "ping from dom0" > "$tty"
wait_guest_log hello 'console input: ping from dom0' 10
pass "console input reached the service"
t0=$(now_ms)
check xl shutdown hello
wait_gone hello 15
timing shutdown_to_gone "$(elapsed "$t0")"
log=$(guest_log hello)
check grep -F 'shutdown requested (poweroff)' "$log"
check grep -F 'hello: stop requested, leaving' "$log"
check grep -F 'powering off' "$log"
pass "xl shutdown stopped hello cleanly"

xl_create hello 'cmdline="wait"'
wait_guest_log hello 'waiting for xl shutdown' 10
old=$(xl domid hello)
check xl reboot hello
wait_until 20 "hello restarted with a new domid" bash -c "id=\$(xl domid hello 2>/dev/null) && [ \"\$id\" != $old ]"
wait_guest_log hello 'rebooting' 5
xl_destroy hello
pass "xl reboot restarted hello"
