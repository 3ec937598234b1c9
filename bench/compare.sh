#!/usr/bin/env bash
# Benchmark (not a test): runs bench/NAME/run.sh in the nested Xen test host, where it measures
# a keel service and a Linux PVH guest doing the same job in the same run, and prints a table
# with the ratio keel / Linux per row (each row the median of BENCH_REPS rounds, 3 unless
# KEEL_DOM0_CMDLINE_EXTRA="BENCH_REPS=N", with its min..max below it). Never asserts.
#   bench/compare.sh NAME...     NAME: httpd|kvstore|disk|memory|profile|lifecycle|pv
#   bench/compare.sh all         httpd, kvstore, disk and memory, then one table of every row
#                                and the images' size per component
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: bench/compare.sh NAME... | all" >&2; exit 2; }
names=("$@")
[ "$*" = all ] && names=(httpd kvstore disk memory)
for name in "${names[@]}"; do
    [ -x "$root/bench/$name/run.sh" ] || { echo "no bench/$name/run.sh" >&2; exit 2; }
done
# settings NAME: the settings of bench NAME in BENCH_COLUMNS, accel, smp and guest_cpu.
# Two CPUs, one QEMU thread each (multi-threaded TCG), dom0 pinned to CPU 0 and the measured
# guests to CPU 1: client and guest run in parallel, as on a real host, Xen no longer picks a
# placement per round, and a guest's CPU time (the guest_cpu_us rows) is its own. Under one TCG
# thread a guest on dom0's other CPU served half, a CPU time counted what QEMU spent on the
# other CPU, and the ratios spread as much with one CPU (docs/testbed.md, "Multi-threaded
# TCG"). Should a Linux guest still die, its round is run again in a fresh guest (linux_round)
# and the bench counts it (BENCH_linux_guest_crashes).
# bench/NAME/bench.conf may set BENCH_COLUMNS (the table's two columns, default "keel linux"),
# BENCH_QEMU_ACCEL, BENCH_QEMU_SMP and BENCH_GUEST_CPU (the CPU of the measured guests, dom0
# pinned to the others by bench/lib.sh; empty: Xen places them); KEEL_QEMU_ACCEL, KEEL_QEMU_SMP
# and KEEL_BENCH_GUEST_CPU ("none": Xen places them) in the environment override them.
settings() {
    BENCH_COLUMNS="keel linux"
    BENCH_QEMU_ACCEL="tcg,thread=multi"
    BENCH_QEMU_SMP=2
    BENCH_GUEST_CPU=1
    # shellcheck disable=SC1090
    [ -f "$root/bench/$1/bench.conf" ] && source "$root/bench/$1/bench.conf"
    accel=${KEEL_QEMU_ACCEL:-$BENCH_QEMU_ACCEL}
    smp=${KEEL_QEMU_SMP:-$BENCH_QEMU_SMP}
    guest_cpu=${KEEL_BENCH_GUEST_CPU:-$BENCH_GUEST_CPU}
    [ "$guest_cpu" = none ] && guest_cpu=
    if [ -n "$guest_cpu" ] && ! { [[ $guest_cpu =~ ^(0|[1-9][0-9]*)$ && $smp =~ ^[0-9]+$ ]] &&
                                  [ "$guest_cpu" -lt "$smp" ] && [ "$smp" -gt 1 ]; }; then
        echo "bench/$1: the guests' CPU ($guest_cpu) must be a CPU number below -smp ($smp)," \
            "with -smp 2 or more (KEEL_BENCH_GUEST_CPU=none: Xen places them)" >&2
        return 1
    fi
}
# Every bench's settings are checked before the first runs.
for name in "${names[@]}"; do settings "$name" || exit 2; done
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
# Debian's QEMU with one fix to its SVM event injection (testbed/build-qemu.sh; built once and
# cached): under the stock binary an injected interrupt is now and then delivered twice, and the
# Linux guest panics when it lands in user mode (docs/testbed.md). KEEL_QEMU overrides it.
if [ -z "${KEEL_QEMU:-}" ]; then
    KEEL_QEMU=$("$root/testbed/build-qemu.sh") || {
        KEEL_QEMU=qemu-system-x86_64
        echo "bench: WARNING: testbed/build-qemu.sh failed; Debian's QEMU instead, under which" \
            "the Linux guest panics now and then, and with one TCG thread and Xen's placement:" \
            "under it multi-threaded TCG triple-faulted keel (docs/testbed.md)" >&2
        export KEEL_QEMU_ACCEL=${KEEL_QEMU_ACCEL:-tcg,thread=single}
        export KEEL_BENCH_GUEST_CPU=${KEEL_BENCH_GUEST_CPU:-none}
    }
fi
export KEEL_QEMU
command -v "$KEEL_QEMU" >/dev/null || { echo "bench: no QEMU at $KEEL_QEMU" >&2; exit 2; }
qemu_version=$("$KEEL_QEMU" --version)
mkdir -p "$root/build/bench-logs"
echo "$KEEL_QEMU: ${qemu_version%%$'\n'*}" | tee "$root/build/bench-logs/qemu.txt"
status=0
consoles=()
for name in "${names[@]}"; do
    logs="$root/build/bench-logs/$name"
    settings "$name"
    echo "bench/$name: -accel $accel -smp $smp, BENCH_GUEST_CPU=${guest_cpu:-(none: Xen places the guests)}" >> "$root/build/bench-logs/qemu.txt"
    s=0
    KEEL_DOM0_CMDLINE_EXTRA="${KEEL_DOM0_CMDLINE_EXTRA:-}${guest_cpu:+ BENCH_GUEST_CPU=$guest_cpu}" \
    KEEL_QEMU_ACCEL=$accel KEEL_QEMU_SMP=$smp "$root/testbed/run-scenario.sh" "$root/bench/$name" \
        --apps "$root/build/apps" --logs "$logs" --timeout "${KEEL_BENCH_TIMEOUT:-2400}" --quiet || s=$?
    [ $s -eq 0 ] || { echo "bench/$name did not finish (status $s); partial results; logs in $logs" >&2; status=$s; }
    consoles+=("$logs/console.log")
    # shellcheck disable=SC2086
    [ ${#names[@]} -gt 1 ] || "$root/bench/table.sh" "$logs/console.log" $BENCH_COLUMNS
done
if [ ${#names[@]} -gt 1 ]; then
    cat "${consoles[@]}" > "$root/build/bench-logs/all.log"
    "$root/bench/table.sh" "$root/build/bench-logs/all.log"
fi
if [ "$*" = all ]; then
    echo
    python3 "$root/scripts/size-breakdown.py" "$root/build"
fi
exit $status
