#!/bin/bash
# Runs in dom0: measures hello. Prints KEEL-BENCH lines that bench/hello.sh turns into a table.
source /scenario/lib.sh
img=/scenario/apps/hello.xen
echo "KEEL-BENCH image_bytes=$(stat -c %s "$img")"

# xl create to the first console line, five runs.
for i in 1 2 3 4 5; do
    name="hello-b$i"
    xl_create hello "name=\"$name\""
    t0=$KEEL_CREATED_MS
    poll 10 grep -q 'keel on Xen' "$(guest_log "$name")" || fail "$name printed nothing"
    echo "KEEL-BENCH create_to_first_line_ms=$(elapsed "$t0")"
    # The guest's own view: pvclock from entry to the service's start.
    us=$(grep -oE 'service starting \(([0-9]+) us after entry\)' "$(guest_log "$name")" | grep -oE '[0-9]+' | head -1)
    echo "KEEL-BENCH entry_to_service_us=${us:-NA}"
    wait_gone "$name" 10
done

# The smallest memory it boots in: bench/memory (every service).
