#!/bin/bash
# hello boots, prints the Xen version, its memory and its command line, passes the W^X audit,
# and powers off cleanly: with on_poweroff = "destroy" the domain disappears.
source /scenario/lib.sh
xl_create hello 'cmdline="greeting=hi name=\"keel admin\""'
t0=$KEEL_CREATED_MS
wait_guest_log hello 'hello from keel on Xen 4\.17' 10
timing create_to_hello "$(elapsed "$t0")"
log=$(guest_log hello)
check grep -E "keel on Xen 4\.17.* as a $([ "$KEEL_GUEST_TYPE" = pv ] && echo PV || echo PVH) guest" "$log"
check grep -E 'W\^X audit: [0-9]+ pages mapped, [0-9]+ writable, [0-9]+ executable, 0 writable\+executable, page 0 unmapped' "$log"
check grep -E 'memory: [0-9]+ MiB' "$log"
check grep -F 'command line: "greeting=hi name="keel admin"" (2 words)' "$log"
wait_gone hello 10
check grep -E 'powering off \(stack: [1-9][0-9]* of [0-9]+ KiB used at most\)' "$log"
# The earliest output goes to the Xen debug port before any driver exists (PVH); ring 3 has no
# port I/O, so a PV guest writes it to its console ring.
if [ "$KEEL_GUEST_TYPE" = pv ]; then
    check grep -F 'keel: booting (PV)' "$log"
else
    wait_dmesg '\(d[0-9]+\) keel: booting' 5
fi
pass "hello printed its facts and powered off"

# A malformed command line is reported and the domain crashes (on_crash = preserve keeps it).
xl_create hello 'name="hello-badcmd"' 'cmdline="unterminated=\"oops"'
wait_guest_log hello-badcmd 'bad command line: .*unterminated' 10
wait_state hello-badcmd c 10
xl_destroy hello-badcmd
pass "a malformed command line gives a clear error and a crashed domain"

# loglevel=: warn hides the info lines, a subsystem (the word before a line's colon) keeps its
# own level, and a bad value is refused clearly.
xl_create hello 'name="hello-quiet"' 'cmdline="loglevel=warn,memory=info"'
wait_gone hello-quiet 15
log=$(guest_log hello-quiet)
check grep -E 'info: memory: [0-9]+ MiB' "$log"
others=$(grep ' info: ' "$log" | grep -v ' info: memory: ' || true)
[ -z "$others" ] || fail "loglevel=warn still printed info lines: $others"
pass "loglevel=warn,memory=info: only the memory lines of the info level are printed"
xl_create hello 'name="hello-badlevel"' 'cmdline="loglevel=loud"'
wait_guest_log hello-badlevel 'bad command line: loglevel=loud' 10
wait_state hello-badlevel c 10
xl_destroy hello-badlevel
pass "a bad loglevel= gives a clear error and a crashed domain"
