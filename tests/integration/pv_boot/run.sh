#!/bin/bash
# The hello image as a classic 64-bit PV guest (hello-pv.xl, type = "pv"; docs/pv.md, steps 2 and 3):
# Xen enters it through the PV ELF notes; it validates start_info, writes its first lines to the
# PV console ring it located through start_info and the p2m, installs its trap table and event
# callback, loads its own W^X page tables (pinned by Xen), and boots on through the same kernel, console and xenstore drivers as PVH to the
# hello service, which prints and powers off (on_poweroff = "destroy": the domain disappears).
# That the same image still boots as PVH is the hello scenario.
source /scenario/lib.sh
xl_create hello-pv 'cmdline="greeting=hi name=\"keel admin\""'
t0=$KEEL_CREATED_MS
wait_guest_log hello-pv 'keel: booting \(PV\) on Xen 4\.17' 20
timing create_to_pv_booting "$(elapsed "$t0")"
wait_guest_log hello-pv 'hello from keel on Xen 4\.17' 20
timing create_to_hello "$(elapsed "$t0")"
wait_gone hello-pv 20
timing create_to_pv_gone "$(elapsed "$t0")"
log=$(guest_log hello-pv)
cat "$log"
check grep -E 'keel: start_info at 0x[0-9a-f]+: [0-9]+ pages \([0-9]+ MiB\), flags 0x?[0-9a-f]*; console pfn 0x[0-9a-f]+ port [0-9]+, xenstore pfn 0x[0-9a-f]+ port [0-9]+, [0-9]+ page-table frames' "$log"
# The kernel's own lines, as in PVH: the mode, the audit of keel's own tables (Xen pinned them:
# no page writable and executable, nothing near 0, the tables read-only), and the service's.
check grep -E 'keel on Xen 4\.17.* as a PV guest, 8 MiB RAM' "$log"
check grep -E 'W\^X audit: [0-9]+ pages mapped, [0-9]+ writable, [0-9]+ executable, 0 writable\+executable, page 0 unmapped, [1-9][0-9]* page-table pages read-only' "$log"
check grep -F 'command line: "greeting=hi name="keel admin"" (2 words)' "$log"
check grep -F 'memory: 8 MiB' "$log"
check grep -E 'service starting \([0-9]+ us after entry\)' "$log"
check grep -E 'powering off \(stack: [0-9]+ of [0-9]+ KiB used at most\)' "$log"
# It powered off: no crash line, and Xen saw a clean shutdown (not a crash: on_crash = preserve
# would have kept the domain, and wait_gone would have failed).
if grep -qE 'bad start_info|FAULT|crashing' "$log"; then fail "the guest crashed or refused its start_info"; fi
pass "hello boots as a classic PV guest through keel_main, runs its service and powers off"
