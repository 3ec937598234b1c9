#!/bin/bash
# Runs one scenario in the nested Xen test host (QEMU TCG -> Xen 4.17 -> dom0 -> guests).
#
#   testbed/run-scenario.sh SCENARIO_DIR [--apps DIR] [--file PATH]... [--logs DIR] [--timeout S]
#                           [--guest-type pvh|pv] [--quiet|--shell]
#
# SCENARIO_DIR/run.sh runs in dom0 with cwd /scenario (= a copy of SCENARIO_DIR, plus lib.sh from
# testbed/dom0-lib.sh). If SCENARIO_DIR/build.sh is executable, it is run first on this host with
# the staging directory of /scenario as its argument (to build guest images at pack time).
# --apps DIR: every DIR/NAME/NAME.xen with DIR/NAME/NAME.xl is shipped as /scenario/apps/NAME.xen
#   and /scenario/apps/NAME.xl, the latter's `kernel = ...` pointing at /scenario/apps/NAME.xen
#   (and NAME-pv.xl, the classic PV config, the same way; and NAME.map, the symbols for xenctx,
#   if there is one).
# --file PATH: PATH is shipped as /scenario/BASENAME, mode kept (repeatable): a dom0 program the
#   build made (tools/), which run.sh then uses from there.
# --logs DIR: serial.log (everything QEMU printed), serial-timed.log (the same, each line with
#   its arrival time in seconds since QEMU started), console.log (serial.log without the log
#   dumps and carriage returns: Xen, dom0 and run.sh's output), guest-NAME.log (each guest's
#   console), xl-dmesg.log, dom0-dmesg.log, xen-xl-NAME.log (xl's own log of each guest),
#   timings.txt. Default: $TMPDIR/keel-testbed-logs/SCENARIO.
# --timeout S: wall-clock limit of the whole QEMU run (default 600). dom0 stops run.sh 30 s
#   before that (status 124) so that the logs still get out; KEEL_SCENARIO_TIMEOUT in the
#   environment sets a tighter limit for run.sh alone.
# --guest-type pv: run.sh's xl_create NAME creates NAME-pv.xl (type = "pv") under the name NAME,
#   so a scenario written for PVH runs its keel guests as classic PV unchanged; run.sh sees
#   KEEL_GUEST_TYPE (pvh, the default, or pv) for checks that differ between the two.
# --quiet: do not copy the serial output to stdout (it is still in serial.log).
# --shell: interactive (needs a terminal): after run.sh, dom0 opens a shell on the console;
#   leaving it prints the logs and powers off. Default --timeout is then 3600.
#
# Exit status: run.sh's status (0 = pass; 124 = run.sh hit its time limit; 68 = no run.sh;
# 69 = dom0 setup failed), or when dom0 never printed its KEEL-SCENARIO-EXIT marker:
#   70 QEMU was stopped by the --timeout limit
#   71 QEMU exited on its own (crash, triple fault, ...)
#   72 Xen or dom0 panicked (seen on the serial console); QEMU was stopped
#   2  usage error or the host could not be built / the scenario could not be packed
#
# Environment: KEEL_TESTBED_CACHE (see build-host.sh), KEEL_QEMU (emulator binary),
# KEEL_XEN_CMDLINE_EXTRA (appended to Xen's command line), KEEL_DOM0_CMDLINE_EXTRA (appended
# to dom0's), KEEL_QEMU_CPU (-cpu value), KEEL_QEMU_ACCEL (-accel value), KEEL_QEMU_SMP (CPUs
# of the nested host, 2 unless set), KEEL_QEMU_EXTRA (more QEMU arguments, split on spaces),
# KEEL_SCENARIO_TIMEOUT,
# KEEL_TESTBED_LOCK (lock file serializing nested runs on the machine, default
# $TMPDIR/keel-testbed-qemu.lock; empty = no serialization).
set -euo pipefail
# The body is a single block: bash reads all of it before running it, so changing this file while
# it runs (an edit, a git checkout during a test) cannot make a running instance execute a mix.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KEEL_TESTBED_CACHE:-$HOME/.cache/keel-testbed}
QEMU=${KEEL_QEMU:-qemu-system-x86_64}

say() { echo "[run-scenario] $*"; }
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
die() { echo "[run-scenario] ERROR: $*" >&2; exit 2; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }

SCENARIO='' APPS='' FILES=() LOGS='' TIMEOUT='' QUIET=0 SHELL_MODE=0
while [ $# -gt 0 ]; do
    case $1 in
        --apps) APPS=${2:?--apps needs a directory}; shift 2 ;;
        --file) FILES+=("${2:?--file needs a path}"); shift 2 ;;
        --logs) LOGS=${2:?--logs needs a directory}; shift 2 ;;
        --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
        --guest-type) GUEST_TYPE=${2:?--guest-type needs pvh or pv}; shift 2 ;;
        --quiet) QUIET=1; shift ;;
        --shell) SHELL_MODE=1; shift ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) [ -z "$SCENARIO" ] || usage; SCENARIO=$1; shift ;;
    esac
done
[ -n "$SCENARIO" ] || usage
TIMEOUT=${TIMEOUT:-$([ "$SHELL_MODE" = 1 ] && echo 3600 || echo 600)}
[ -f "$SCENARIO/run.sh" ] || die "$SCENARIO/run.sh does not exist"
GUEST_TYPE=${GUEST_TYPE:-pvh}
[[ $GUEST_TYPE == pvh || $GUEST_TYPE == pv ]] || die "--guest-type wants pvh or pv"
if ! [[ $TIMEOUT =~ ^[1-9][0-9]*$ ]]; then die "--timeout wants a number of seconds"; fi
[ -z "$APPS" ] || [ -d "$APPS" ] || die "--apps $APPS is not a directory"
declare -A shipped=()
for f in "${FILES[@]}"; do
    [ -f "$f" ] || die "--file $f is not a file (built?)"
    b=$(basename -- "$f")
    case $b in run.sh|lib.sh|timeout|apps) die "--file $f: /scenario/$b is the scenario's own" ;; esac
    [ -z "${shipped[$b]:-}" ] || die "--file $f: another --file is also named $b"
    shipped[$b]=1
done
SCENARIO=$(cd "$SCENARIO" && pwd)
NAME=$(basename "$SCENARIO")
LOGS=${LOGS:-${TMPDIR:-/tmp}/keel-testbed-logs/$NAME}
mkdir -p "$LOGS"
LOGS=$(cd "$LOGS" && pwd)
rm -f "$LOGS"/serial.log "$LOGS"/serial-timed.log "$LOGS"/console.log "$LOGS"/guest-*.log \
    "$LOGS"/xl-dmesg.log "$LOGS"/dom0-dmesg.log "$LOGS"/xen-*.log "$LOGS"/timings.txt
command -v "$QEMU" >/dev/null || die "$QEMU not found: run scripts/install-deps.sh"
T_START=$(now_ms)

# ---- the host ----------------------------------------------------------------------------------
"$HERE/build-host.sh" || die "building the test host failed"
T_BUILT=$(now_ms)

# ---- the scenario archive ----------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keel-scenario.XXXXXX")
QPID=''
# shellcheck disable=SC2317  # (called by the trap)
cleanup() {
    if [ -n "$QPID" ]; then kill "$QPID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for p in "$CACHE" "$WORK"; do
    case $p in *[,\ ]*) die "QEMU's -initrd cannot take a path with a comma or space: $p" ;; esac
done

STAGE=$WORK/stage/scenario
mkdir -p "$STAGE"
cp -a "$SCENARIO/." "$STAGE/"
cp "$HERE/dom0-lib.sh" "$STAGE/lib.sh"
if [ -x "$SCENARIO/build.sh" ]; then
    say "building the scenario's files: $SCENARIO/build.sh"
    "$SCENARIO/build.sh" "$STAGE" || die "$SCENARIO/build.sh failed"
fi
for f in "${FILES[@]}"; do
    [ ! -e "$STAGE/$(basename -- "$f")" ] || die "--file $f: the scenario has a file of that name"
    cp -p -- "$f" "$STAGE/"
done
napps=0
if [ -n "$APPS" ]; then
    mkdir -p "$STAGE/apps"
    for d in "$APPS"/*/; do
        app=$(basename "$d")
        [ -f "$d/$app.xen" ] || continue
        if [ ! -f "$d/$app.xl" ]; then
            say "warning: $d$app.xen has no $app.xl; not shipped"
            continue
        fi
        cp "$d/$app.xen" "$STAGE/apps/$app.xen"
        [ ! -f "$d/$app.map" ] || cp "$d/$app.map" "$STAGE/apps/$app.map"  # for xenctx -s
        # NAME-pv.xl (keel_add_service): the same image as a classic PV guest.
        for xl in "$app" "$app-pv"; do
            [ -f "$d/$xl.xl" ] || continue
            sed -E "s|^[[:space:]]*kernel[[:space:]]*=.*|kernel = \"/scenario/apps/$app.xen\"|" \
                "$d/$xl.xl" >"$STAGE/apps/$xl.xl"
        done
        napps=$((napps + 1))
    done
fi
SCENARIO_TIMEOUT=${KEEL_SCENARIO_TIMEOUT:-$TIMEOUT}
[[ $SCENARIO_TIMEOUT =~ ^[0-9]+$ ]] || die "KEEL_SCENARIO_TIMEOUT wants a number of seconds"
echo "$SCENARIO_TIMEOUT" >"$STAGE/timeout"
( cd "$WORK/stage" && find scenario -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc -R 0:0 --quiet ) | gzip -1 >"$WORK/scenario.cpio.gz"
cat "$CACHE/dom0.cpio.gz" "$WORK/scenario.cpio.gz" >"$WORK/initrd"
T_PACKED=$(now_ms)
say "scenario $NAME packed: $(( $(stat -c %s "$WORK/scenario.cpio.gz") / 1024 )) KiB, $napps app(s), QEMU limit ${TIMEOUT}s"
say "logs in $LOGS"

# ---- boot --------------------------------------------------------------------------------------
# spec-ctrl=eager-fpu: with Xen's lazy FPU switching (its default on AMD, which QEMU's `max` CPU
# is), dom0's processes crash and hang under TCG as soon as a guest shares the CPUs
# (docs/testbed.md, "Lazy FPU switching").
# bootscrub=0: Xen otherwise scrubs its free RAM (about 2 GiB) in the idle loop for the first
# minute or so after boot, and under TCG every guest runs slower meanwhile (docs/testbed.md,
# traps). The RAM is QEMU's, fresh for every run: nothing secret is in it (but a guest's new
# pages are not all zero: keel zeroes what it needs itself).
XEN_CMDLINE="console=com1 dom0_mem=1024M,max:1024M noreboot guest_loglvl=all spec-ctrl=eager-fpu bootscrub=0 ${KEEL_XEN_CMDLINE_EXTRA:-}"
# One nested run at a time on this machine: TCG runs in parallel only slow each other down until
# their time limits strike. The limit starts counting once the lock is held.
LOCK=${KEEL_TESTBED_LOCK-${TMPDIR:-/tmp}/keel-testbed-qemu.lock}
if [ -n "$LOCK" ]; then
    exec 6>>"$LOCK"
    if ! flock -n 6; then
        say "waiting for another nested run to finish (lock $LOCK)"
        flock 6
    fi
fi
T_LOCKED=$(now_ms)
mkfifo "$WORK/serial"
T_QEMU=$(now_ms)
# dom0 ends run.sh by KEEL_DEADLINE, 30 s before QEMU's limit, to leave time for the log dump.
DEADLINE=$(( T_QEMU / 1000 + TIMEOUT - (TIMEOUT > 120 ? 30 : TIMEOUT / 4) ))
DOM0_CMDLINE="console=hvc0 ${KEEL_DOM0_CMDLINE_EXTRA:-} KEEL_SCENARIO_TIMEOUT=$SCENARIO_TIMEOUT KEEL_DEADLINE=$DEADLINE KEEL_GUEST_TYPE=$GUEST_TYPE"
KERNEL=$CACHE/vmlinuz   # the decompressed copy saves Xen's slow xz decompression
[ ! -s "$CACHE/vmlinux" ] || KERNEL=$CACHE/vmlinux
# shellcheck disable=SC2054  # (commas inside QEMU arguments)
# One TCG thread for all CPUs (2 unless KEEL_QEMU_SMP says otherwise): with QEMU's
# multi-threaded TCG, keel guests triple-faulted now and then under load while Xen injected an
# interrupt (docs/testbed.md).
QEMU_ARGS=(-machine q35 -accel "${KEEL_QEMU_ACCEL:-tcg,thread=single}" -cpu "${KEEL_QEMU_CPU:-max,-smap,-smep}"
    -m 3072 -smp "${KEEL_QEMU_SMP:-2}" -nographic -no-reboot
    -kernel "$CACHE/xen" -append "$XEN_CMDLINE"
    -initrd "$KERNEL $DOM0_CMDLINE,$WORK/initrd")
# shellcheck disable=SC2206  # (word splitting wanted)
[ -z "${KEEL_QEMU_EXTRA:-}" ] || QEMU_ARGS+=($KEEL_QEMU_EXTRA)
if [ "$SHELL_MODE" = 1 ]; then
    # Interactive: QEMU on this terminal; dom0 opens a shell after run.sh (KEEL_SHELL=1).
    # The transcript is processed like a normal run's once QEMU has exited.
    QEMU_ARGS[${#QEMU_ARGS[@]} - 1]="$KERNEL $DOM0_CMDLINE KEEL_SHELL=1,$WORK/initrd"
    say "interactive run: dom0 opens a shell on the console after run.sh; 'exit' there prints the"
    say "logs and powers off; Ctrl-a x quits QEMU at once"
    SERIAL_IN=$WORK/transcript
    qrc=0
    setpriv --pdeathsig TERM timeout --foreground -k 10 "$TIMEOUT" "$QEMU" "${QEMU_ARGS[@]}" 2>&1 |
        tee "$SERIAL_IN" ||
        qrc=${PIPESTATUS[0]}
    QUIET=1
else
    SERIAL_IN=$WORK/serial
    # pdeathsig: if this script is killed (e.g. by ctest's timeout), QEMU goes with it instead of
    # running on, holding the lock, until its own limit.
    setpriv --pdeathsig TERM timeout -k 10 "$TIMEOUT" "$QEMU" "${QEMU_ARGS[@]}" \
        </dev/null >"$SERIAL_IN" 2>&1 &
    QPID=$!
fi

# Read the serial console: copy it to serial.log (and stdout), split the log dumps into files,
# note the markers' times, and stop QEMU early when Xen or dom0 has panicked.
EXIT_STATUS='' READY_MS='' PANIC='' KILLER='' cur='' cur_bytes=0
: >"$LOGS/timings.txt"
exec 3>"$LOGS/serial.log" 5>"$LOGS/serial-timed.log" 7>"$LOGS/console.log"
while IFS= read -r raw || [ -n "$raw" ]; do
    printf '%s\n' "$raw" >&3
    [ "$QUIET" = 1 ] || printf '%s\n' "$raw"
    line=$raw   # without the carriage returns of the tty and of Xen's serial driver
    while [[ $line == *$'\r' ]]; do line=${line%$'\r'}; done
    t=$(( $(now_ms) - T_QEMU ))
    printf '%5d.%03d %s\n' $(( t / 1000 )) $(( t % 1000 )) "$line" >&5
    if [ -n "$cur" ]; then
        if [[ $line == "KEEL-LOG-END "* ]]; then
            want=${line##*bytes=}
            [ "$want" = "$cur_bytes" ] ||
                say "warning: $cur arrived with $cur_bytes bytes instead of $want (serial output lost)"
            exec 4>&-
            cur=
        else
            printf '%s\n' "$line" >&4
            cur_bytes=$(( cur_bytes + ${#line} + 1 ))
        fi
        continue
    fi
    [[ $line == "KEEL-LOG-BEGIN "* ]] || printf '%s\n' "$line" >&7
    case $line in
        KEEL-LOG-BEGIN\ *)
            cur=${line#KEEL-LOG-BEGIN }
            cur=${cur//[^A-Za-z0-9._-]/_}
            [[ $cur == [A-Za-z0-9]* ]] || cur=log-$cur
            cur_bytes=0
            exec 4>"$LOGS/$cur" ;;
        KEEL-DOM0-READY*)
            READY_MS=$(( $(now_ms) - T_QEMU ))
            # (an interactive run's transcript is read after the fact: no arrival times)
            [ "$SHELL_MODE" = 1 ] || echo "qemu-start-to-dom0-ready=$READY_MS ms" >>"$LOGS/timings.txt" ;;
        KEEL-TIMING\ *)
            echo "${line#KEEL-TIMING }" >>"$LOGS/timings.txt" ;;
        KEEL-SCENARIO-EXIT=*)
            EXIT_STATUS=${line#KEEL-SCENARIO-EXIT=}
            EXIT_STATUS=${EXIT_STATUS%%[^0-9]*} ;;
        "["*"] Kernel panic - not syncing"*|"(XEN) Panic on CPU"*|"(XEN) Hardware Dom0 crashed"*|\
        "(XEN) Manual reset required"*)
            if [ -z "$PANIC" ] && [ -z "$EXIT_STATUS" ]; then
                PANIC=$line
                # Let the rest of the report reach the log, then stop QEMU.
                if [ -n "$QPID" ]; then
                    ( sleep 3; kill "$QPID" 2>/dev/null ) &
                    KILLER=$!
                fi
            fi ;;
    esac
done <"$SERIAL_IN"
exec 3>&- 5>&- 7>&-
[ -z "$cur" ] || { exec 4>&-; say "warning: the dump of $cur was cut off"; }
if [ -n "$QPID" ]; then
    qrc=0
    wait "$QPID" || qrc=$?
    QPID=
fi
[ -z "$KILLER" ] || kill "$KILLER" 2>/dev/null || true
T_END=$(now_ms)
{
    echo "build-host=$(( T_BUILT - T_START )) ms"
    echo "pack=$(( T_PACKED - T_BUILT )) ms"
    echo "lock-wait=$(( T_LOCKED - T_PACKED )) ms"
    echo "qemu-total=$(( T_END - T_QEMU )) ms"
    echo "total=$(( T_END - T_START )) ms"
} >>"$LOGS/timings.txt"

# ---- verdict -----------------------------------------------------------------------------------
if [ -n "$EXIT_STATUS" ]; then
    status=$EXIT_STATUS
    if [ "$status" = 0 ]; then
        msg="scenario $NAME passed"
    else
        msg="scenario $NAME FAILED with status $status"
        case $status in
            124) msg+=" (run.sh ran out of time)" ;;
            68) msg+=" (no run.sh reached dom0)" ;;
            69) msg+=" (dom0 setup failed: the toolstack did not come up)" ;;
        esac
    fi
elif [ -n "$PANIC" ]; then
    status=72
    msg="scenario $NAME FAILED: panic on the serial console, QEMU stopped: ${PANIC}"
elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    status=70
    msg="scenario $NAME FAILED: no KEEL-SCENARIO-EXIT marker within the ${TIMEOUT}s limit (QEMU killed)"
else
    status=71
    msg="scenario $NAME FAILED: QEMU exited (status $qrc) without a KEEL-SCENARIO-EXIT marker"
fi
if [ -z "$READY_MS" ]; then
    msg+="; dom0 never reported ready"
fi

if [ "$status" != 0 ]; then
    echo
    echo "======== last 60 lines of the console ($LOGS/console.log) ========"
    tail -n 60 "$LOGS/console.log"
    for g in "$LOGS"/guest-*.log; do
        [ -f "$g" ] || continue
        echo "======== last 40 lines of $g ========"
        tail -n 40 "$g"
    done
    echo "========"
fi
say "timings:"
sed 's/^/[run-scenario]   /' "$LOGS/timings.txt"
say "$msg (total $(secs $(( T_END - T_START )))s, logs in $LOGS)"
exit "$status"
}
