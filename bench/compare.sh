#!/usr/bin/env bash
# Benchmark (not a test): runs bench/NAME/run.sh in the nested Xen test host, where it measures
# a keel service and a Linux PVH guest doing the same job in the same run, and prints a table
# with the ratio keel / Linux per row. Never asserts.
#   bench/compare.sh httpd|kvstore
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: bench/compare.sh NAME}
[ -x "$root/bench/$name/run.sh" ] || { echo "no bench/$name/run.sh" >&2; exit 2; }
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
logs="$root/build/bench-logs/$name"
status=0
"$root/testbed/run-scenario.sh" "$root/bench/$name" --apps "$root/build/apps" --logs "$logs" \
    --timeout "${KEEL_BENCH_TIMEOUT:-2400}" --quiet || status=$?
[ $status -eq 0 ] || echo "bench/$name did not finish (status $status); partial results; logs in $logs" >&2
grep -h 'KEEL-BENCH' "$logs/console.log" | sed 's/.*KEEL-BENCH //' | tr -d '\r' | awk '
    { if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 }
      v[$1, $2] = $3; for (i = 4; i <= NF; i++) v[$1, $2] = v[$1, $2] " " $i }
    END {
        printf "%-26s %14s %14s %10s\n", "metric", "keel", "linux", "keel/linux"
        for (i = 0; i < n; i++) {
            m = order[i]; k = v[m, "keel"]; l = v[m, "linux"]
            r = (k ~ /^[0-9.]+$/ && l ~ /^[0-9.]+$/ && l + 0 != 0) ? sprintf("%.2f", k / l) : "-"
            printf "%-26s %14s %14s %10s\n", m, k == "" ? "-" : k, l == "" ? "-" : l, r
        }
    }'
exit $status
