#!/bin/bash
# Self-test scenario of the nested test host: boots a 4 KB PVH guest that writes
# "keel-selftest ok" to port 0xE9 and checks that Xen prints it as "(dN) keel-selftest ok".
# shellcheck source=../dom0-lib.sh
source /scenario/lib.sh

check xl info
xl_create /scenario/selftest.xl
wait_dmesg '\(d[0-9]+\) keel-selftest ok' 10
timing selftest-create-to-output "$(elapsed "$KEEL_CREATED_MS")"
pass "guest output seen in xl dmesg"

# The guest idles in sti/hlt: it must be alive (not crashed, not shut down).
state=$(dom_state keel-selftest)
[[ $state == *[cs]* ]] && fail "keel-selftest is in state '$state' instead of idling"
pass "keel-selftest idles (state '$state')"

xl_destroy keel-selftest
pass "keel-selftest destroyed"
timing selftest-scenario "$(elapsed)"
