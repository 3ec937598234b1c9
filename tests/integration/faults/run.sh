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
expect stack-overflow 'stack guard page' 'recurse'
expect stack-smash 'stack smashing detected' 'stack_smash'
expect write-page-table 'write to a page-table page' 'write_page_table'
expect panic 'deliberate panic' 'Faults::run|keel::panic'
