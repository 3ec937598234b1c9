#!/bin/bash
# greeter, a service built outside keel's tree against the installed SDK (examples/outside-service;
# the unit test sdk installs the SDK and builds it, see tests/CMakeLists.txt), boots as any app
# does: prints its line, passes the W^X audit, brings the network up through keel::net (with
# netfront and lwIP from the package), greets a TCP client in dom0 and powers off on xl shutdown.
source /scenario/lib.sh
ip=10.0.0.2
xl_create greeter
t0=$KEEL_CREATED_MS
wait_guest_log greeter 'greeter: built outside the tree, running on Xen 4\.17' 10
timing create_to_hello "$(elapsed "$t0")"
log=$(guest_log greeter)
check grep -E 'W\^X audit: [0-9]+ pages mapped, .* 0 writable\+executable' "$log"
pass "greeter, built against the installed SDK, booted and printed its line"

wait_guest_log greeter 'greeter: listening on port 7' 60
reply=$(timeout 20 bash -c 'exec 3<>"/dev/tcp/$0/7" && cat <&3' "$ip") || fail "no greeting from $ip port 7"
[ "$reply" = "hello from greeter, a keel service built outside the tree" ] || fail "unexpected greeting: '$reply'"
timing create_to_greeting "$(elapsed "$t0")"
pass "a TCP client in dom0 got the greeting (keel::net, netfront and lwIP from the package)"

check xl shutdown greeter
wait_gone greeter 30
grep -Eq 'greeter: stopping, connections greeted: 1([^0-9]|$)' "$log" || fail "greeter did not stop on xl shutdown"
pass "xl shutdown powers greeter off"
