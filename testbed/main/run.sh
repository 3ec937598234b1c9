#!/bin/bash
# The main job: boot hello in the nested Xen host, wait for it, stop it with xl shutdown.
source /scenario/lib.sh
xl_create hello 'cmdline="wait"'
wait_guest_log hello 'waiting for xl shutdown' 10
timing create_to_ready "$(elapsed "$KEEL_CREATED_MS")"
xl list
check xl shutdown hello
wait_gone hello 15
pass "hello booted, answered and powered off on xl shutdown"
