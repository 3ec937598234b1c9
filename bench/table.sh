#!/usr/bin/env bash
# Prints the KEEL-BENCH lines of a benchmark run's console log as a table, with the ratio
# keel / Linux per row:  bench/table.sh build/bench-logs/NAME/console.log
set -euo pipefail
grep -h 'KEEL-BENCH' "$1" | sed 's/.*KEEL-BENCH //' | tr -d '\r' | awk '
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
