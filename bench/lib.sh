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

# cpu_reader_start: start the reader of Xen's CPU accounting that cpu_snap asks, and wait until
# it answers (a bench calls it before it measures anything: starting python3 takes about 0.8 s
# of dom0's CPU). Started per reading, that cost would fall inside the second reading of each
# run and count as dom0's.
# cpu_snap DOMID: one reading, "T GUEST DOM0" in ns: dom0's monotonic clock, the CPU time domain
# DOMID has had so far (all its vCPUs) and dom0's, each NA when unknown (a domain that is gone).
# Xen's accounting and dom0's clock agree: a CPU's idle time plus the time of the vCPUs that ran
# on it added up to dom0's clock within 31 ms over 2-26 s (docs/testbed.md). A vCPU's time is
# the time it ran, Xen's work on its behalf included; a blocked or paused one has none; dom0's
# includes the client's and the backends' work. Read through the Python binding of dom0's Xen
# tools (`xl list` rounds to 0.1 s). Under one TCG thread neither is a domain's own: a domain with
# work also accrues time while QEMU runs the other CPU (bench/README.md). After a failure (the
# reader gone, or no answer within 10 s) every reading is NA, and the first failure is shown.
_cpu_in=/tmp/bench-cpu.in _cpu_out=/tmp/bench-cpu.out
cpu_reader_start() {
    # dom0's CPUs: the most dom0's vCPUs can run on at once (with BENCH_GUEST_CPU, the CPUs it is
    # pinned to), what dom0_busy_pct is a share of; NA if unknown.
    local vcpus ncpu=${_ncpu:-$(xl info | awk '$1 == "nr_cpus" {print $3}')}
    vcpus=$(xl vcpu-list Domain-0 2>/dev/null | awk 'NR > 1' | wc -l)
    BENCH_DOM0_CPUS=NA
    if [[ $ncpu =~ ^[1-9][0-9]*$ ]]; then
        BENCH_DOM0_CPUS=$ncpu
        [ -n "${BENCH_GUEST_CPU:-}" ] && BENCH_DOM0_CPUS=$((ncpu - 1))
        [ "$vcpus" -gt 0 ] && [ "$vcpus" -lt "$BENCH_DOM0_CPUS" ] && BENCH_DOM0_CPUS=$vcpus
    fi
    rm -f $_cpu_in $_cpu_out /tmp/bench-cpu-failed && mkfifo $_cpu_in $_cpu_out || fail "mkfifo failed"
    # The request FIFO is opened read-write once: a reader that reopened it after each EOF could
    # drop a request written in between.
    PYTHONPATH=/usr/lib/xen-4.17/lib/python python3 -c '
import os, sys, time
from xen.lowlevel import xc
x = xc.xc()
def ns(d):
    try:
        i = x.domain_getinfo(d, 1) if d >= 0 else []
    except Exception:  # xc.Error: a domain being destroyed
        return "NA"
    return i[0]["cpu_time"] if i and i[0]["domid"] == d else "NA"
fd = os.open(sys.argv[1], os.O_RDWR)
buf = b""
while True:
    buf += os.read(fd, 256)
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        t = time.monotonic_ns()
        d = int(line) if line.strip().isdigit() else -1
        with open(sys.argv[2], "w") as o:
            print(t, ns(d), ns(0), file=o)' $_cpu_in $_cpu_out </dev/null >/dev/null 2>/tmp/bench-cpu.err &
    # python3's start may take long in a busy dom0: the first answer may take a minute.
    [ "$(_cpu_wait=60 cpu_snap 0)" != "NA NA NA" ] || echo "    [bench] no CPU figures in this bench"
}
cpu_snap() {
    local out st=0
    [ -p $_cpu_in ] && [ ! -e /tmp/bench-cpu-failed ] || { echo NA NA NA; return 0; }
    out=$(timeout "${_cpu_wait:-10}" sh -c 'echo "$1" > "$2" && read -r l < "$3" && echo "$l"' sh "$1" $_cpu_in $_cpu_out) || st=$?
    if [ $st = 0 ] && [[ $out =~ ^[0-9]+\ ([0-9]+|NA)\ ([0-9]+|NA)$ ]]; then
        echo "$out"
        return 0
    fi
    # Called in $(...): a file remembers the failure.
    if [ $st = 124 ]; then
        echo "    [bench] Xen's CPU accounting: no answer within ${_cpu_wait:-10} s; $(tail -n 1 /tmp/bench-cpu.err 2>/dev/null)" >&2
    else
        echo "    [bench] reading Xen's CPU accounting failed: ${out:-$(tail -n 1 /tmp/bench-cpu.err 2>/dev/null)}" >&2
    fi
    touch /tmp/bench-cpu-failed
    echo NA NA NA
}
# cpu_figures "SNAP0" "SNAP1" OPS: from two cpu_snap readings around a client run that made OPS
# requests, "GUEST_US DOM0_US DOM0_BUSY": the guest's and dom0's CPU time per request in us, and
# dom0's busy share of its CPUs in % (near 100: the client side, not the guest, set the pace);
# NA for a reading that is NA or OPS that is not a positive number.
cpu_figures() {
    awk -v a="$1" -v b="$2" -v n="$3" -v cpus="$BENCH_DOM0_CPUS" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        ok = n ~ /^[0-9]+$/ && n > 0 && x[1] ~ /^[0-9]+$/ && y[1] ~ /^[0-9]+$/ && y[1] > x[1]
        g = ok && x[2] ~ /^[0-9]+$/ && y[2] ~ /^[0-9]+$/ && y[2] >= x[2] ? sprintf("%.1f", (y[2] - x[2]) / 1000 / n) : "NA"
        d = ok && x[3] ~ /^[0-9]+$/ && y[3] ~ /^[0-9]+$/ && y[3] >= x[3]
        print g, d ? sprintf("%.1f", (y[3] - x[3]) / 1000 / n) : "NA", d && cpus ~ /^[1-9][0-9]*$/ ? sprintf("%.0f", 100 * (y[3] - x[3]) / (y[1] - x[1]) / cpus) : "NA" }'
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
