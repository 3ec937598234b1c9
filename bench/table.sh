#!/usr/bin/env bash
# Prints the KEEL-BENCH lines of a benchmark run's console log as a table, with the ratio
# keel / Linux per row:  bench/table.sh build/bench-logs/NAME/console.log [COLUMN_A COLUMN_B]
# (the two systems' names in the KEEL-BENCH lines, default keel and linux; the ratio is A / B).
set -euo pipefail
a=${2:-keel}
b=${3:-linux}
grep -h 'KEEL-BENCH' "$1" | sed 's/.*KEEL-BENCH //' | tr -d '\r' | awk -v A="$a" -v B="$b" '
    { if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 }
      v[$1, $2] = $3; for (i = 4; i <= NF; i++) v[$1, $2] = v[$1, $2] " " $i }
    END {
        printf "%-36s %20s %20s %10s\n", "metric", A, B, A "/" B
        for (i = 0; i < n; i++) {
            m = order[i]; k = v[m, A]; l = v[m, B]
            r = (k ~ /^[0-9]+(\.[0-9]+)?$/ && l ~ /^[0-9]+(\.[0-9]+)?$/ && l + 0 != 0) ? sprintf("%.2f", k / l) : "-"
            printf "%-36s %20s %20s %10s\n", m, k == "" ? "-" : k, l == "" ? "-" : l, r
        }
    }'
