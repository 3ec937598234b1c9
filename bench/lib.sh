# Sourced in dom0 by every bench's run.sh (each build.sh ships it as /scenario/bench-lib.sh):
# the result lines bench/compare.sh turns into a table. Never asserts.

# Repetitions of every measured row (each row is their median, with min..max beside it).
BENCH_REPS=${BENCH_REPS:-3}

# bench NAME SYSTEM VALUE: one result line.
bench() { echo "KEEL-BENCH $1 $2 $3"; }

# BENCH_GUEST_CPU (dom0's command line; bench/compare.sh sets it): the CPU the measured guests
# run on. dom0's vCPUs are pinned to the other CPUs, and BENCH_PLACE holds the xl line that puts
# a guest on BENCH_GUEST_CPU: every xl create of a measured guest passes it (linux_xl writes it).
# So the client in dom0 and the guest it measures never share a CPU, and Xen's scheduler does
# not choose a placement per round (docs/testbed.md). Empty: Xen places every vCPU.
BENCH_PLACE=()
if [ -n "${BENCH_GUEST_CPU:-}" ]; then
    _ncpu=$(xl info | awk '$1 == "nr_cpus" {print $3}')
    [[ $BENCH_GUEST_CPU =~ ^(0|[1-9][0-9]*)$ ]] && [ "$BENCH_GUEST_CPU" -lt "${_ncpu:-0}" ] && [ "$_ncpu" -gt 1 ] ||
        fail "BENCH_GUEST_CPU=$BENCH_GUEST_CPU: the host has ${_ncpu:-no} CPUs; it needs one besides dom0's"
    _dom0_cpus=$(seq 0 $((_ncpu - 1)) | grep -vx "$BENCH_GUEST_CPU" | paste -sd,)
    xl vcpu-pin Domain-0 all "$_dom0_cpus" || fail "xl vcpu-pin Domain-0 all $_dom0_cpus failed"
    BENCH_PLACE=("cpus=\"$BENCH_GUEST_CPU\"")
    echo "    [bench] dom0 on CPU $_dom0_cpus, the measured guests on CPU $BENCH_GUEST_CPU"
fi

# guest_cpu_ns NAME: the CPU time (ns) the domain NAME has had so far, all its vCPUs: Xen's own
# accounting (time a vCPU ran, Xen's work on its behalf included; a blocked or paused one has
# none; dom0's backends' work for it is dom0's), read through the Python binding of dom0's Xen
# tools (`xl list` rounds to 0.1 s). NA for a domain that is gone; the first failure of the
# binding itself is shown. Xen's clock is wall time, so a figure is the guest's own only when
# its CPU runs in a QEMU thread of its own (multi-threaded TCG): under one TCG thread a guest
# with work also accrues time while QEMU runs the other CPU (bench/README.md).
guest_cpu_ns() {
    local id out
    id=$(xl domid "$1" 2>/dev/null) || { echo NA; return 0; }
    if out=$(PYTHONPATH=/usr/lib/xen-4.17/lib/python python3 -c '
import sys
from xen.lowlevel import xc
d = int(sys.argv[1])
i = xc.xc().domain_getinfo(d, 1)
print(i[0]["cpu_time"] if i and i[0]["domid"] == d else "NA")' "$id" 2>/tmp/bench-cpu.err); then
        echo "$out"
    else
        # Called in $(...): a file remembers that the failure was shown.
        [ -e /tmp/bench-cpu-failed ] ||
            echo "    [bench] reading a guest's CPU time failed: $(tail -n 1 /tmp/bench-cpu.err)" >&2
        touch /tmp/bench-cpu-failed
        echo NA
    fi
}
# cpu_per_op NS0 NS1 OPS: microseconds of CPU per operation between two guest_cpu_ns readings;
# NA when a reading is NA or OPS is not a positive number.
cpu_per_op() {
    awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/ || n !~ /^[0-9]+$/ || n == 0 || b < a) print "NA"
        else printf "%.1f", (b - a) / 1000 / n }'
}

# hold NAME / resume NAME: pause the guest NAME between its rounds (xl pause: its vCPU gets no
# time at all), and let it run again. A guest that is gone or crashed (a lost Linux guest) is
# left to linux_round, which boots the next; one that will not pause or stays paused fails the
# bench rather than giving figures of a guest that never ran.
_bench_skip() { ! xl domid "$1" >/dev/null 2>&1 || [[ $(dom_state "$1") == *c* ]]; }
hold() { _bench_skip "$1" || xl pause "$1" || fail "xl pause $1 failed"; }
resume() {
    _bench_skip "$1" && return 0
    if [[ $(dom_state "$1") == *p* ]]; then xl unpause "$1" || fail "xl unpause $1 failed"; fi
    [[ $(dom_state "$1") != *p* ]] || fail "guest $1 is still paused"
}

# stats METRIC SYSTEM VALUES...: METRIC as the median of the numeric VALUES, and METRIC_range as
# min..max; NA when none is a number (a run that failed).
stats() {
    local metric=$1 system=$2 sorted n
    shift 2
    sorted=$(printf '%s\n' "$@" | grep -E '^[0-9]+(\.[0-9]+)?$' | sort -g)
    n=$(grep -c . <<<"$sorted")
    if [ "$n" -eq 0 ]; then
        bench "$metric" "$system" NA
        return 0
    fi
    bench "$metric" "$system" "$(sed -n "$(( (n + 1) / 2 ))p" <<<"$sorted")"
    bench "${metric}_range" "$system" "$(head -n1 <<<"$sorted")..$(tail -n1 <<<"$sorted")($n)"
}
