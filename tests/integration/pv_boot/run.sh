#!/bin/bash
# The hello image as a classic 64-bit PV guest (hello-pv.xl, type = "pv"; docs/pv.md, step 1):
# Xen enters it through the PV ELF notes, it validates start_info, prints what it found on the
# PV console ring it located through start_info and the p2m, says that the rest of PV boot is
# not built yet, and powers off (on_poweroff = "destroy": the domain disappears). That the same
# image still boots as PVH is the hello scenario.
source /scenario/lib.sh
xl_create hello-pv 'cmdline="greeting=hi name=\"keel admin\""'
t0=$KEEL_CREATED_MS
wait_guest_log hello-pv 'keel: booting \(PV\) on Xen 4\.17' 20
timing create_to_pv_booting "$(elapsed "$t0")"
wait_gone hello-pv 20
timing create_to_pv_gone "$(elapsed "$t0")"
log=$(guest_log hello-pv)
cat "$log"
check grep -E 'keel: start_info at 0x[0-9a-f]+: xen-3\.0-x86_64, [0-9]+ pages \([0-9]+ MiB\)' "$log"
check grep -E 'keel: console pfn 0x[0-9a-f]+ port [0-9]+, xenstore pfn 0x[0-9a-f]+ port [0-9]+, [0-9]+ page-table frames' "$log"
check grep -E 'keel: shared_info \(machine 0x[0-9a-f]+\) mapped at 0x[0-9a-f]+' "$log"
check grep -F 'keel: command line: "greeting=hi name="keel admin""' "$log"
check grep -F 'keel: classic PV: start_info valid; the rest of PV boot is not built yet (issue 13); powering off' "$log"
# It powered off: no crash line, and Xen saw a clean shutdown (not a crash: on_crash = preserve
# would have kept the domain, and wait_gone would have failed).
if grep -q 'bad start_info' "$log"; then fail "the guest refused its start_info"; fi
pass "hello boots as a classic PV guest, validates start_info, reports it and powers off"
