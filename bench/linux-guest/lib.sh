# Sourced in dom0 by the comparison benchmarks, after /scenario/lib.sh.
# The Linux PVH guest: Debian's kernel (the one dom0 runs, shipped as /scenario/vmlinuz by the
# benchmark's build.sh) and an initramfs from mkinitrd.sh.

source /scenario/bench-lib.sh   # bench, stats, hold, resume, BENCH_REPS, cpu_snap, ...

LINUX_INITRD=/tmp/bench-linux.cpio.gz

# linux_initrd [WWW_DIR]: build the initramfs once.
linux_initrd() {
    [ -s "$LINUX_INITRD" ] || /scenario/linux-guest/mkinitrd.sh "$LINUX_INITRD" "${1:-}" ||
        fail "building the Linux guest's initramfs failed"
}

# For the command line of a guest that turn() pauses between its rounds: its clock runs on while
# it is paused, and the soft-lockup and RCU stall checks would take the minutes it did not run
# for a lockup and print stacks at its next round.
LINUX_PAUSED_CMDLINE="nowatchdog rcupdate.rcu_cpu_stall_suppress=1"

# linux_xl NAME MEMORY_MIB CMDLINE [XL LINE...]: write /tmp/NAME.xl for the Linux guest.
linux_xl() {
    local name=$1 mem=$2 cmdline=$3
    shift 3
    {
        echo "name = \"$name\""
        echo 'type = "pvh"'
        echo 'kernel = "/scenario/vmlinuz"'
        echo "ramdisk = \"$LINUX_INITRD\""
        echo "cmdline = \"console=hvc0 quiet $cmdline\""
        echo "memory = $mem"
        echo 'vcpus = 1'
        echo 'tsc_mode = "native"'      # nested-xen.md: rdtscp under an emulated TSC kills it
        # hap = 0 (shadow paging) did not keep the guest from panicking (docs/testbed.md);
        # LINUX_HAP sets it for an experiment.
        [ -z "${LINUX_HAP:-}" ] || echo "hap = $LINUX_HAP"
        echo 'on_poweroff = "destroy"'
        echo 'on_crash = "preserve"'    # a crash stays visible (linux_survived), not a vanished guest
        [ ${#BENCH_PLACE[@]} = 0 ] || printf '%s\n' "${BENCH_PLACE[@]}"   # bench-lib.sh
        printf '%s\n' "$@"
    } > "/tmp/$name.xl"
    echo "/tmp/$name.xl"
}

# linux_crashed NAME: the Linux guest NAME crashed (it stays, on_crash = "preserve"), or its
# console shows a panic.
linux_crashed() { [[ $(dom_state "$1") == *c* ]] || linux_panicked "$1"; }
# linux_panicked NAME: the console of the Linux guest NAME shows a panic (no xl call: cheap to poll).
linux_panicked() { grep -q 'Kernel panic' "$(guest_log "$1")" 2>/dev/null; }

# linux_wait NAME LIMIT_S CMD...: wait until CMD succeeds (poll), at most LIMIT_S s; false as soon
# as the console of the Linux guest NAME shows a panic (seen under multi-threaded TCG: init killed
# by an invalid opcode a few seconds into the boot), rather than after the whole limit.
linux_wait() {
    local name=$1 limit=$2
    shift 2
    poll "$limit" _linux_up_or_panicked "$name" "$@" && ! linux_crashed "$name"
}
_linux_up_or_panicked() {
    local name=$1
    shift
    linux_panicked "$name" || "$@"
}

# watched NAME CMD...: runs CMD (a client); stops it as soon as the guest NAME crashed, instead
# of letting it wait out its own timeout on a dead guest. NAME empty: just runs CMD. turn()
# watches keel's guest too: the check (xl list every 3 s) takes dom0's CPU from the client, and
# it takes it in both guests' rounds alike. Returns as soon as the client ends (a plain wait for
# it; a checker beside it): the CPU reading after a client must not count a wait. A loop on
# bash's `wait -n` once never saw the client end; a 20 ms poll cost dom0 about 1.5% of a CPU.
# Keeps the client's own CPU time for client_cpu: bash's `times` before and after the wait for
# it, before the checker is reaped (the shell's other children are not counted).
exec {_bench_console}>&1   # the scenario's output, for a message from inside $(...)
_client_times=/tmp/bench-client-times
watched() {
    local name=$1 pid checker st
    shift
    rm -f "$_client_times.0" "$_client_times.1"   # a failed write leaves no earlier client's
    times >"$_client_times.0"
    if [ -z "$name" ]; then
        "$@"
        st=$?
        times >"$_client_times.1"
        return "$st"
    fi
    "$@" &
    pid=$!
    ( while sleep 3; do
          if linux_crashed "$name"; then
              echo "    [bench] $name crashed; its client stopped" >&"$_bench_console"
              kill "$pid" 2>/dev/null
              break
          fi
      done ) </dev/null >/dev/null 2>&1 &
    checker=$!
    wait "$pid"
    st=$?
    times >"$_client_times.1"
    kill "$checker" 2>/dev/null
    wait "$checker" 2>/dev/null
    return "$st"
}

# client_cpu OPS: the CPU time, user and system, of the last client watched ran, per request in
# us; NA without both readings or OPS not a positive number. It is what dom0's kernel charged the
# client (redis-benchmark, wrk, ab, and timeout in front of it): its own code and system calls,
# and the interrupt and softirq work (netback, the bridge, TCP receive) that ran while it was the
# current task. The sum is the client's scheduler run time (bash's times: 1 ms steps).
client_cpu() {
    [ -s "$_client_times.0" ] && [ -s "$_client_times.1" ] || { echo NA; return; }
    awk -v n="$1" '
        function sec(t,    m) { m = t; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", t); sub(/s$/, "", t); sub(/,/, ".", t); return m * 60 + t }
        FNR == 2 && $1 ~ /^[0-9]+m[0-9]+[.,][0-9]+s$/ && $2 ~ /^[0-9]+m[0-9]+[.,][0-9]+s$/ { c[++k] = sec($1) + sec($2) }
        END { if (k == 2 && n ~ /^[0-9]+$/ && n > 0 && c[2] >= c[1]) printf "%.1f\n", (c[2] - c[1]) * 1e6 / n; else print "NA" }
    ' "$_client_times.0" "$_client_times.1" 2>/dev/null
}

# linux_drop NAME: the Linux guest NAME is lost: count it (LINUX_CRASHES), destroy it.
linux_drop() {
    LINUX_CRASHES=$((LINUX_CRASHES + 1))
    xl destroy "$1" >/dev/null 2>&1
    wait_gone "$1" 30 >/dev/null
}

# linux_vcpu NAME: where the vCPU of guest NAME runs (xenctx's rip, rsp, cs), for one that hangs.
linux_vcpu() {
    timeout 60 /usr/lib/xen-4.17/bin/xenctx "$(xl domid "$1" 2>/dev/null)" 0 2>&1 | grep -E '^ *(rip|rsp|cs):' |
        sed 's/^/    [xenctx] /'
}

# Under Debian's QEMU the Linux guest panicked now and then: an injected interrupt delivered
# twice (docs/testbed.md; the benches' QEMU has the fix). Should it still die, a round it dies
# in measured its timeouts, not Linux: linux_round NAME START ROUND runs the function ROUND; if
# the guest crashed meanwhile, it shows the panic, counts it (LINUX_CRASHES, the row
# BENCH_linux_guest_crashes), starts a fresh guest with the function START and runs ROUND again, at
# most 3 times. ROUND leaves its results in globals, which the caller keeps only on success.
LINUX_CRASHES=0
linux_round() {
    local name=$1 start=$2 round=$3 attempt log
    # The round after one that lost all its guests starts a fresh one.
    xl domid "$name" >/dev/null 2>&1 || linux_boot "$name" "$start" || return 1
    for attempt in 1 2 3; do
        "$round"
        linux_crashed "$name" || return 0
        log=$(guest_log "$name")
        echo "    [linux] $name crashed in a round (attempt $attempt); its console:"
        grep -E 'RIP:|CR2:|Kernel panic|Oops|BUG' "$log" | head -n 6 | sed 's/^/    [linux console] /'
        linux_drop "$name"
        mv "$log" "$log.crash$LINUX_CRASHES"
        [ "$attempt" -lt 3 ] && { linux_boot "$name" "$start" || return 1; }
    done
    return 1
}

# turn SYSTEM KEEL LINUX START ROUND: one ROUND (a function) of SYSTEM, keel or linux: the keel
# guest KEEL, or the Linux guest LINUX through linux_round (START boots a fresh one for one
# lost). The guest runs for its round only, resumed before and held (xl pause) after: both
# guests of a bench stay up and take turns (bench/README.md). False when the round lost 3
# Linux guests.
turn() {
    local sys=$1 keel=$2 linux=$3 start=$4 round=$5 ok=0
    if [ "$sys" = linux ]; then
        resume "$linux"
        WATCH=$linux linux_round "$linux" "$start" "$round" && ok=1
        hold "$linux"
    else
        resume "$keel"
        WATCH=$keel "$round" && ok=1
        hold "$keel"
    fi
    [ $ok = 1 ]
}

# in_turns ROUND: ROUND linux and ROUND keel, BENCH_REPS times, in the order Linux, keel | keel,
# Linux | Linux, keel, ... So the rounds of both guests spread over the same minutes, and a host
# whose speed drifts during the bench moves both guests' figures alike (bench/README.md). The
# round's number is in i. First a round 0 of each, not counted (its figures are dropped): each
# guest's first ab was its slowest (bench/README.md).
in_turns() {
    local order sys
    i=0
    echo "    [bench] round 0 of each guest: a warm-up, not counted"
    for sys in linux keel; do "$1" "$sys"; done
    ROUNDS=()
    for i in $(seq "$BENCH_REPS"); do
        order="linux keel"
        [ $((i % 2)) = 0 ] && order="keel linux"
        for sys in $order; do "$1" "$sys"; done
    done
}

# record SYSTEM "FIGURES": one round's figures of SYSTEM (a line, NA for one it has not);
# columns SYSTEM METRIC...: the stats of every METRIC over SYSTEM's rounds, the first METRIC from
# the first figure of each line, and so on.
declare -A ROUNDS
record() { ROUNDS[$1]+="$2"$'\n'; }
columns() {
    local sys=$1 c=0 metric
    shift
    for metric in "$@"; do
        c=$((c + 1))
        # shellcheck disable=SC2046
        stats "$metric" "$sys" $(awk -v c=$c 'NF {print $c}' <<<"${ROUNDS[$sys]}")
    done
}

# linux_boot NAME START: START boots the Linux guest NAME; one that panics while booting, or
# never answers (seen: spinning after its ACPI messages, its vCPU busy for minutes), is counted,
# shown (its panic lines, or where its vCPU runs), destroyed and booted again, at most 3 times.
linux_boot() {
    local name=$1 start=$2 attempt log
    for attempt in 1 2 3; do
        "$start" && ! linux_crashed "$name" && return 0
        log=$(guest_log "$name")
        if linux_crashed "$name"; then
            echo "    [linux] $name panicked while booting (attempt $attempt); its console:"
            grep -E 'RIP:|CR2:|Kernel panic|BUG' "$log" | head -n 4 | sed 's/^/    [linux console] /'
        else
            echo "    [linux] $name did not answer (attempt $attempt); last console line and its vCPU:"
            tail -n 1 "$log" | sed 's/^/    [linux console] /'
            linux_vcpu "$name"
        fi
        linux_drop "$name"
        mv "$log" "$log.boot$LINUX_CRASHES" 2>/dev/null
    done
    return 1
}

# linux_crashes BENCH: the row that says how many Linux guests the bench's rounds lost.
linux_crashes() { bench "${1}_linux_guest_crashes" linux "$LINUX_CRASHES"; }

# linux_image_bytes: what the Linux guest boots from (kernel + initramfs).
linux_image_bytes() { echo $(( $(stat -c %s /scenario/vmlinuz) + $(stat -c %s "$LINUX_INITRD") )); }

