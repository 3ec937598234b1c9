#!/bin/bash
# /init of the nested test host's dom0 (packed into dom0.cpio.gz by testbed/build-host.sh).
# Brings up the Xen toolstack, runs /scenario/run.sh if present, prints the guest console logs,
# `xl dmesg` and dom0's dmesg between markers, prints KEEL-SCENARIO-EXIT=<status>, powers off.
#
# Exit statuses reported in the marker (besides run.sh's own):
#   124  run.sh exceeded its time limit (KEEL_SCENARIO_TIMEOUT)
#   68   no /scenario/run.sh in the initramfs
#   69   dom0 setup failed (toolstack did not come up); run.sh was not started
# The time limit comes from KEEL_SCENARIO_TIMEOUT (kernel command line: the kernel passes
# unknown NAME=VALUE parameters to init's environment) or /scenario/timeout; default 300 s.
# It is shortened so that run.sh ends by KEEL_DEADLINE (epoch seconds, also from the command
# line), which run-scenario.sh sets to leave time for the log dump before QEMU is killed.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-linux}
umask 022
SETUP_OK=1

ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
uptime_s() { cut -d' ' -f1 /proc/uptime 2>/dev/null; }
say() { echo "keel-init: $*"; }
bad() { echo "keel-init: ERROR: $*"; SETUP_OK=0; }

# ---- 1. file systems; tmpfs on /run before anything creates directories in it -------------
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || say "devtmpfs already mounted"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755,size=64M tmpfs /run
mkdir -p /run/xen /run/xen-hotplug /run/lock /run/xenstored
chmod 700 /run/xen
chmod 1777 /tmp
[ -L /var/run ] || { rm -rf /var/run; ln -s /run /var/run; }
[ -L /var/lock ] || { rm -rf /var/lock; ln -s /run/lock /var/lock; }
# ---- 2. links devtmpfs does not create (the block hotplug script's lock needs /dev/fd) -------
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
hostname dom0
ip link set lo up
say "file systems up at uptime $(uptime_s)s"

# ---- 3. Xen kernel modules and xenfs ---------------------------------------------------------
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback xen-blkback bridge loop; do
    modprobe "$m" || bad "modprobe $m failed"
done
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen || bad "cannot mount xenfs"

# The versioned toolstack directory first, so the Debian wrappers are not needed.
for d in /usr/lib/xen-*/bin; do [ -d "$d" ] && PATH=$d:$PATH; done
export PATH

# ---- 4. xenstored, xen-init-dom0, xenconsoled -------------------------------------------------
export XENSTORED_ROOTDIR=/var/lib/xenstored
if [ "$SETUP_OK" = 1 ]; then
    xenstored --pid-file /run/xenstore.pid || bad "xenstored failed to start"
    ok=0
    for _ in $(seq 1 300); do
        if xenstore-read -s / >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || bad "xenstored did not answer within 30 s"
fi
if [ "$SETUP_OK" = 1 ]; then
    xen-init-dom0 >/dev/null || bad "xen-init-dom0 failed"
    mkdir -p /var/log/xen/console
    xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console ||
        bad "xenconsoled failed to start"
fi

# ---- 5. bridge for vif = ["bridge=xenbr0"] ---------------------------------------------------
if [ "$SETUP_OK" = 1 ]; then
    { brctl addbr xenbr0 && brctl stp xenbr0 off && brctl setfd xenbr0 0; } ||
        ip link add xenbr0 type bridge || bad "cannot create bridge xenbr0"
    ip addr add 10.0.0.1/24 dev xenbr0 || bad "cannot address xenbr0"
    ip link set xenbr0 up || bad "cannot bring xenbr0 up"
fi

if [ "$SETUP_OK" = 1 ]; then
    echo "KEEL-DOM0-READY uptime=$(uptime_s)s"
else
    echo "KEEL-DOM0-FAILED uptime=$(uptime_s)s"
fi

# ---- 6. the scenario ------------------------------------------------------------------------
status=0
if [ "$SETUP_OK" != 1 ]; then
    status=69
elif [ -f /scenario/run.sh ]; then
    limit=${KEEL_SCENARIO_TIMEOUT:-}
    [ -z "$limit" ] && [ -s /scenario/timeout ] && limit=$(tr -dc 0-9 </scenario/timeout)
    limit=${limit:-300}
    # Stop in time to print the logs before the host kills QEMU (KEEL_DEADLINE: host's epoch
    # seconds; dom0's clock comes from the emulated RTC, i.e. from the host's clock).
    if [ -n "${KEEL_DEADLINE:-}" ]; then
        left=$(( KEEL_DEADLINE - $(date +%s) ))
        if [ "$left" -le 0 ] || [ "$left" -gt 86400 ]; then
            say "warning: ignoring KEEL_DEADLINE ($left s left by dom0's clock $(date -u +%FT%TZ))"
        elif [ "$left" -lt "$limit" ]; then
            limit=$left
        fi
    fi
    say "running /scenario/run.sh (limit ${limit}s)"
    t0=$(ms_now)
    ( cd /scenario && exec timeout -k 5 "$limit" bash ./run.sh </dev/null )
    status=$?
    dt=$(( $(ms_now) - t0 ))
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        say "ERROR: /scenario/run.sh exceeded its time limit of ${limit}s"
        status=124
    fi
    say "run.sh finished with status $status after $((dt / 1000)).$(printf %03d $((dt % 1000)))s"
else
    say "no /scenario/run.sh in the initramfs"
    status=68
fi

# Interactive runs (run-scenario.sh --shell): a shell on the console before the logs are printed.
if [ "${KEEL_SHELL:-0}" = 1 ]; then
    say "interactive shell (scenario status $status); leave it with 'exit' to print the logs and power off"
    tty=/dev/hvc0   # /dev/console cannot be a controlling terminal
    [ -c $tty ] || tty=/dev/console
    ( cd /scenario 2>/dev/null || cd /; exec setsid -c bash -l <$tty >$tty 2>&1 )
fi

# ---- 7. logs to the serial console, between markers -----------------------------------------
dmesg -n 1 2>/dev/null   # keep kernel messages from interleaving with the dump
say "domains at the end of the scenario:"
xl list 2>&1
# Destroy what is left so nothing else writes to the console during the dump.
for dom in $(xl list 2>/dev/null | awk 'NR > 2 { print $1 }'); do
    xl destroy "$dom" >/dev/null 2>&1
done
sleep 0.3

dump() {   # dump NAME FILE
    local name=$1 file=$2 bytes
    # Size as it will arrive on the host: without carriage returns, newline-terminated.
    bytes=$(tr -d '\r' <"$file" | sed -e '$a\' | wc -c)
    echo "KEEL-LOG-BEGIN $name"
    tr -d '\r' <"$file" | sed -e '$a\'
    echo "KEEL-LOG-END $name bytes=$bytes"
}
tmp=$(mktemp -d)
for f in /var/log/xen/console/*; do
    [ -f "$f" ] && dump "$(basename "$f")" "$f"
done
xl dmesg >"$tmp/xl-dmesg.log" 2>&1 && dump xl-dmesg.log "$tmp/xl-dmesg.log"
dmesg >"$tmp/dom0-dmesg.log" 2>&1 && dump dom0-dmesg.log "$tmp/dom0-dmesg.log"
for f in /var/log/xen/*.log; do   # xl's per-domain logs (xl-NAME.log), if any
    [ -f "$f" ] && dump "xen-$(basename "$f")" "$f"
done

echo "KEEL-SCENARIO-EXIT=$status"
sync
busybox poweroff -f
# Not reached unless poweroff failed; never let init exit (that panics the kernel).
while :; do sleep 3600; done
