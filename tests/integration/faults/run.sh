#!/bin/bash
# Each deliberate fault produces a report (kind, address, registers, symbolized backtrace) on
# the console and a crashed domain, so on_crash applies.
source /scenario/lib.sh
expect() {   # expect KIND REGEX: boot faults with fault=KIND, wait for the report line REGEX
    local kind=$1 regex=$2 name="faults-$1"
    xl_create faults "name=\"$name\"" "cmdline=\"fault=$kind\""
    wait_state "$name" c 15
    local log
    log=$(guest_log "$name")
    wait_log "$log" "$regex" 5
    check grep -Eq 'FAULT|PANIC|panic' "$log"
    check grep -q 'backtrace:' "$log"
    # The backtrace names the function that faulted (symbols are built into the image).
    if [ -n "${3:-}" ]; then check grep -Eq "$3" "$log"; fi
    if grep -q 'survived' "$log"; then fail "$kind: the protection is missing"; fi
    xl_destroy "$name"
    pass "$kind: report and crashed domain"
}
expect write-text 'write to a read-only page' 'write_text'
expect write-rodata 'write to a read-only page' 'write_rodata'
expect exec-stack 'instruction fetch from a non-executable page' 'exec_stack'
expect exec-heap 'instruction fetch from a non-executable page' 'exec_heap'
expect null 'null pointer' 'null_read'
if [ "$KEEL_GUEST_TYPE" = pv ]; then
    # Ring 3 has no IST: when the stack runs into its guard page, Xen cannot push the exception
    # frame there, so it crashes the domain itself (domain_crash_sync) and says so in xl dmesg,
    # with the walk of the faulting address: that address must be in the guard page.
    name=faults-stack-overflow
    xl dmesg -c >/dev/null  # only this domain's crash below
    xl_create faults "name=\"$name\"" 'cmdline="fault=stack-overflow"'
    domid=$(xl domid "$name")
    wait_state "$name" c 15
    wait_dmesg "Domain $domid \\(vcpu#0\\) crashed" 5
    guard=$(awk '$3 == "__stack_guard" { print $1 }' "$KEEL_APPS/faults.map")
    [ -n "$guard" ] || fail "no __stack_guard in faults.map"
    walk=$(xl dmesg | sed -n 's/.*Pagetable walk from \([0-9a-f]*\):.*/\1/p' | tail -n 1)
    [ -n "$walk" ] || fail "xl dmesg has no page-table walk for the crash"
    [ $(( 16#$walk >> 12 )) -eq $(( 16#$guard >> 12 )) ] || fail "the crash was at 0x$walk, not in the guard page at 0x$guard"
    log=$(guest_log "$name")
    if grep -q 'survived' "$log"; then fail "stack-overflow: the protection is missing"; fi
    xl_destroy "$name"
    pass "stack-overflow: the guard page stopped it; Xen crashed the domain (no report from ring 3)"
else
    expect stack-overflow 'stack guard page' 'recurse'
fi
expect stack-smash 'stack smashing detected' 'stack_smash'
expect write-page-table 'write to a page-table page' 'write_page_table'
expect panic 'deliberate panic' 'Faults::run|keel::panic'
