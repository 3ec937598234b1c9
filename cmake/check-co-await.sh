#!/usr/bin/env bash
# g++ 12 miscompiles co_await inside a conditional expression (`c ? co_await a : ...`) and inside
# a chain of three or more `&&`/`||` operands: it runs awaits the condition skips (an extra read
# that drops bytes). Fails with FILE:LINE: for each statement that has a co_await and either a
# `?` ... `:` or two `&&`/`||` (docs/cxx-subset.md). Statements may span lines; // comments are
# ignored.
#   check-co-await.sh [ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$root"
find . \( -path './build*' -o -path ./.git \) -prune -o -type f \( -name '*.cc' -o -name '*.h' \) -print0 |
    xargs -0 awk '
        FNR == 1 { stmt = "" }
        {
            line = $0
            sub(/\/\/.*$/, "", line)
            if (stmt == "") start = FNR
            stmt = stmt " " line
            if (line !~ /[;{}][[:space:]]*$/ && line !~ /^[[:space:]]*#/) next
            if (stmt ~ /co_await/) {
                chain = gsub(/&&|\|\|/, "&&", stmt)
                if (stmt ~ /\?[^;]*:/ || chain >= 2) {
                    sub(/^\.\//, "", FILENAME)
                    printf "%s:%d: co_await in a statement with ?: or a && / || chain (use if/else)\n", FILENAME, start
                    bad = 1
                }
            }
            stmt = ""
        }
        END { exit bad }'
