#!/usr/bin/env bash
# cmake/check-layers.sh: passes on the real tree, and fails on a small tree with each kind of
# violation planted (a header of a layer above, a folder missing from the rules, a Xen public
# header outside the folders allowed to include them); passes again once the violation goes.
set -euo pipefail
root=$1
check=$root/cmake/check-layers.sh
fail() { echo "FAIL: $*"; exit 1; }

bash "$check" "$root" || fail "the real tree has includes that point up"

t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/cmake" "$t/base/include/keel" "$t/base/src" "$t/kernel/include/keel" "$t/kernel/src"
cat >"$t/cmake/layers.txt" <<'RULES'
base:                no
kernel:   base       no
RULES
echo '#pragma once' >"$t/base/include/keel/low.h"
echo '#pragma once' >"$t/kernel/include/keel/high.h"
printf '#include "keel/low.h"\n' >"$t/kernel/src/k.cc"
printf '#include "keel/low.h"\n#include <cstdint>\n' >"$t/base/src/b.cc"
bash "$check" "$t" >/dev/null || fail "a clean tree was refused"

printf '#include "keel/high.h"\n' >>"$t/base/src/b.cc"
out=$(bash "$check" "$t") && fail "base including kernel's header passed"
grep -q 'base/src/b.cc:3: base may not include "keel/high.h"' <<<"$out" || fail "unexpected report: $out"
sed -i '3d' "$t/base/src/b.cc"

printf '#include <xen/xen.h>\n' >>"$t/kernel/src/k.cc"
out=$(bash "$check" "$t") && fail "kernel including a Xen public header passed"
grep -q "kernel/src/k.cc:2: kernel may not include Xen's public header <xen/xen.h>" <<<"$out" || fail "unexpected report: $out"
sed -i '2d' "$t/kernel/src/k.cc"

mkdir -p "$t/rogue"; printf '#include "keel/low.h"\n' >"$t/rogue/r.cc"
out=$(bash "$check" "$t") && fail "a folder missing from the rules passed"
grep -q 'rogue/r.cc: folder rogue is not in cmake/layers.txt' <<<"$out" || fail "unexpected report: $out"
rm -r "$t/rogue"

printf '#include "keel/nowhere.h"\n' >>"$t/kernel/src/k.cc"
out=$(bash "$check" "$t") && fail "an include no folder provides passed"
grep -q 'no folder provides "keel/nowhere.h"' <<<"$out" || fail "unexpected report: $out"
sed -i '2d' "$t/kernel/src/k.cc"

bash "$check" "$t" >/dev/null || fail "the tree was not clean again"
echo "layers: ok"
