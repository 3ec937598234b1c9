#!/usr/bin/env bash
# Enforces cmake/layers.txt: every #include "keel/..." in a top-level folder must name a header of
# the folder itself or of a folder it may include, and only folders marked "yes" may include
# Xen's public headers (<xen/...>). Prints each violation as FILE:LINE: and exits 1 if any.
#   check-layers.sh [ROOT]     (default: the repository this script is in)
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
rules=$root/cmake/layers.txt
[[ -f $rules ]] || rules=$(dirname "${BASH_SOURCE[0]}")/layers.txt
cd "$root"
{
    # Header owners: keel/<path> belongs to the top-level folder with <folder>/include/keel/<path>.
    find . \( -path './build*' -o -path ./.git \) -prune -o -path '*/include/keel/*' -name '*.h' -print |
        sed -E 's|^\./([^/]+)/.*/include/(keel/.*)$|H \2 \1|; s|^\./([^/]+)/include/(keel/.*)$|H \2 \1|'
    # Every include line of every source file below a top-level folder.
    find . -mindepth 2 \( -path './build*' -o -path ./.git \) -prune -o -type f \
         \( -name '*.h' -o -name '*.cc' -o -name '*.c' -o -name '*.S' \) -print0 |
        xargs -0 grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' |
        sed -E 's|^\./||; s|^([^:]+):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]+)[">].*|I \1 \2 \3|'
} | awk -v rules="$rules" '
    BEGIN {
        while ((getline l < rules) > 0) {
            if (l ~ /^[[:space:]]*(#|$)/) continue
            n = split(l, w, /[[:space:]]+/)
            f = w[1]; sub(/:$/, "", f)
            xen[f] = w[n]; allowed[f] = " "
            for (i = 2; i < n; i++) allowed[f] = allowed[f] w[i] " "
        }
    }
    $1 == "H" { owner[$2] = $3; next }
    $1 == "I" { file[++count] = $2; line[count] = $3; inc[count] = $4 }
    END {
        bad = 0
        for (i = 1; i <= count; i++) {
            split(file[i], p, "/"); top = p[1]
            if (!(top in allowed)) { printf "%s: folder %s is not in cmake/layers.txt\n", file[i], top; bad = 1; continue }
            if (allowed[top] == " * ") continue
            h = inc[i]
            if (h ~ /^xen\//) {
                if (xen[top] != "yes") { printf "%s:%s: %s may not include Xen'"'"'s public header <%s>\n", file[i], line[i], top, h; bad = 1 }
            } else if (h ~ /^keel\//) {
                if (!(h in owner)) { printf "%s:%s: no folder provides \"%s\"\n", file[i], line[i], h; bad = 1 }
                else if (owner[h] != top && index(allowed[top], " " owner[h] " ") == 0) {
                    printf "%s:%s: %s may not include \"%s\" (from %s, not below %s)\n", file[i], line[i], top, h, owner[h], top; bad = 1
                }
            }
        }
        exit bad
    }'
