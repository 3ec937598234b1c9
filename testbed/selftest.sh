#!/bin/bash
# End-to-end check of the nested test host: installs what is missing, builds (or reuses) the
# host, builds the self-test guest, boots it in nested Xen and checks its port 0xE9 output.
#   testbed/selftest.sh [--logs DIR] [--timeout S (default 600)] [--quiet]
# Exit status: that of testbed/run-scenario.sh (0 = pass).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/../scripts/install-deps.sh"

logs=${TMPDIR:-/tmp}/keel-testbed-logs/selftest
args=("$@")
for ((i = 0; i < ${#args[@]} - 1; i++)); do
    [ "${args[i]}" = --logs ] && logs=${args[i + 1]}
done
status=0
"$HERE/run-scenario.sh" "$HERE/selftest" "$@" || status=$?

# Guest start-up as seen on the console: from the "xl create" line that xl_create logs to the
# guest's first output (the guest usually prints before `xl create` has returned).
if [ -f "$logs/serial-timed.log" ]; then
    ms=$(awk '/xl create \/scenario\/selftest.xl/ && !t0 { t0 = $1 }
              t0 && /^ *[0-9.]+ \(d[0-9]+\) keel-selftest ok/ { printf "%d", ($1 - t0) * 1000; exit }' \
        "$logs/serial-timed.log")
    if [ -n "$ms" ]; then
        echo "selftest-xl-create-to-first-output=$ms ms" >>"$logs/timings.txt"
        echo "[selftest] xl create to the guest's first output on the console: $ms ms"
    fi
fi
exit "$status"
