#!/usr/bin/env bash
# Benchmark (not a test): hello's image size, xl create to first console line, guest-side time
# from entry to the service's start (pvclock); the smallest `memory =`: bench/compare.sh memory.
# Prints, never asserts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
logs="$root/build/bench-logs/hello"
"$root/testbed/run-scenario.sh" "$root/bench/hello" --apps "$root/build/apps" --logs "$logs" >/dev/null || true
grep -h 'KEEL-BENCH' "$logs/serial.log" | sed 's/.*KEEL-BENCH //' | tr -d '\r' | awk -F= '
    { v[$1] = v[$1] (v[$1] == "" ? "" : " ") $2 }
    END {
        printf "%-28s %s\n", "metric", "value(s)"
        for (k in v) printf "%-28s %s\n", k, v[k]
    }'
# Where the bytes are: every image's size per component (kernel, platform, drivers, lwIP, app),
# from the linker's maps, so growth shows up here.
echo
python3 "$root/scripts/size-breakdown.py" "$root/build"
