#!/usr/bin/env bash
# Runs one libFuzzer target for a while: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#   TARGET   a name from tests/fuzz (e.g. http_parser, resp_parser; `scripts/fuzz.sh list`)
#   SECONDS  how long to fuzz (libFuzzer's -max_total_time)
# Builds TARGET_fuzz with clang (-fsanitize=fuzzer,address,undefined) into $KEEL_BUILD_DIR
# (default build/), starts from the committed seed corpus tests/fuzz/corpus/TARGET and keeps
# what it finds new in a scratch corpus (build/fuzz-corpus/TARGET), so the committed seeds
# stay small. A crash leaves its input as build/fuzz-artifacts/TARGET/crash-*; add it to the
# seed corpus once fixed, so the ctest replay (fuzz_replay_TARGET, label unit) keeps it fixed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KEEL_BUILD_DIR:-$root/build}
seeds=$root/tests/fuzz/corpus

if [ "${1:-}" = list ] || [ $# -lt 2 ]; then
    echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]; targets:" >&2
    ls "$seeds" >&2
    [ "${1:-}" = list ]
    exit
fi
target=$1 seconds=$2
shift 2
[ -d "$seeds/$target" ] || { echo "fuzz.sh: no seed corpus $seeds/$target" >&2; exit 2; }

[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target "${target}_fuzz" -j"$(nproc)"
bin=$(find "$build/tests/fuzz" -maxdepth 1 -name "${target}_fuzz" -type f -perm -u+x | head -1)
[ -n "$bin" ] || { echo "fuzz.sh: ${target}_fuzz was not built (is clang++ installed?)" >&2; exit 2; }

scratch=$build/fuzz-corpus/$target
artifacts=$build/fuzz-artifacts/$target
mkdir -p "$scratch" "$artifacts"
# ASan's quarantine at 64 MiB, not 256: a use after free is still caught unless 64 MiB were
# freed between the free and the use, and freed blocks come back before their pages are given
# back (at 256 MiB, page faults took a third of a backend rig's time per input).
# malloc_context_size=4: ASan records 4 frames of every allocation's and free's stack, not 30;
# an error is still caught, and its report names where the block came from; the corpus replay
# (build/tests/fuzz/TARGET_fuzz_replay FILE) prints the whole stacks. The caller's ASAN_OPTIONS
# come after ours and win.
export ASAN_OPTIONS="quarantine_size_mb=64:malloc_context_size=4${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# -print_final_stats: the executions and coverage a closing note reports.
exec "$bin" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$@" "$scratch" "$seeds/$target"
