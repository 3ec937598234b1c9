#!/usr/bin/env bash
# Benchmark (not a test): runs bench/NAME/run.sh in the nested Xen test host, where it measures
# a keel service and a Linux PVH guest doing the same job in the same run, and prints a table
# with the ratio keel / Linux per row. Never asserts.
#   bench/compare.sh httpd|kvstore|disk|memory|profile|lifecycle|pv
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: bench/compare.sh NAME}
[ -x "$root/bench/$name/run.sh" ] || { echo "no bench/$name/run.sh" >&2; exit 2; }
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
logs="$root/build/bench-logs/$name"
# Multi-threaded TCG here, unlike the tests: under one TCG thread the Linux guest spun
# (domain running, no progress: 245 s of CPU without finishing a 64 MiB dd), while keel's rare
# triple faults under multi-threaded TCG only cost a rerun (docs/testbed.md).
# bench/NAME/bench.conf may set BENCH_COLUMNS (the table's two columns, default "keel linux")
# and BENCH_QEMU_ACCEL (instead of multi-threaded TCG).
BENCH_COLUMNS="keel linux"
BENCH_QEMU_ACCEL=tcg
# shellcheck disable=SC1090
[ -f "$root/bench/$name/bench.conf" ] && source "$root/bench/$name/bench.conf"
export KEEL_QEMU_ACCEL=${KEEL_QEMU_ACCEL:-$BENCH_QEMU_ACCEL}
status=0
"$root/testbed/run-scenario.sh" "$root/bench/$name" --apps "$root/build/apps" --logs "$logs" \
    --timeout "${KEEL_BENCH_TIMEOUT:-2400}" --quiet || status=$?
[ $status -eq 0 ] || echo "bench/$name did not finish (status $status); partial results; logs in $logs" >&2
# shellcheck disable=SC2086
"$root/bench/table.sh" "$logs/console.log" $BENCH_COLUMNS
exit $status
