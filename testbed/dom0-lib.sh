# Helpers for scenario scripts running in the nested test host's dom0.
# testbed/run-scenario.sh ships this file as /scenario/lib.sh; a scenario's run.sh starts with
#     source /scenario/lib.sh
# Every wait has a time limit. The wait_* helpers and check/xl_create fail the scenario (print
# "FAIL: ..." and exit 1) when their condition is not met; poll is the non-fatal variant.
# Timings printed with `timing` are collected by run-scenario.sh into LOGS/timings.txt.
# shellcheck shell=bash

KEEL_LOG_DIR=/var/log/xen/console
KEEL_APPS=/scenario/apps

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
KEEL_T0=$(now_ms)

# elapsed [T0_MS]: milliseconds since T0_MS (default: since lib.sh was sourced).
elapsed() { echo $(( $(now_ms) - ${1:-$KEEL_T0} )); }

_keel_secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }

# log MSG...: message with the scenario-relative time.
log() { echo "[+$(_keel_secs "$(elapsed)")s] $*"; }

# timing NAME MS: record a measurement ("KEEL-TIMING NAME=MS ms" on the console).
timing() { echo "KEEL-TIMING $1=$2 ms"; }

# fail MSG...: the scenario failed; print why and exit 1.
# For a guest that stopped answering, Xen's view of every domain's vCPUs ('q': upcall pending,
# blocked) and event channels ('e': pending, masked) lands in xl-dmesg.log.
fail() {
    echo "FAIL: $* (at +$(_keel_secs "$(elapsed)")s)"
    xl debug-keys q >/dev/null 2>&1
    xl debug-keys e >/dev/null 2>&1
    exit 1
}

# pass MSG...: report one passed check (does not exit; end run.sh with status 0 to pass).
pass() { echo "PASS: $*"; }

# check CMD...: run CMD; fail the scenario if it returns non-zero (its output is shown).
check() {
    local out rc
    out=$("$@" 2>&1) && rc=0 || rc=$?
    if [ $rc -ne 0 ]; then
        [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    | /'
        fail "check failed (status $rc): $*"
    fi
    [ -n "$out" ] && printf '%s\n' "$out"
    echo "ok: $*"
}

# poll TIMEOUT_S CMD...: run CMD every 0.1 s until it succeeds (return 0) or TIMEOUT_S
# seconds pass (return 1). Non-fatal. Sets KEEL_WAITED_MS.
poll() {
    local limit_ms=$(( ${1%.*} * 1000 )) t0
    shift
    t0=$(now_ms)
    while :; do
        if "$@" >/dev/null 2>&1; then
            KEEL_WAITED_MS=$(elapsed "$t0")
            return 0
        fi
        if [ "$(elapsed "$t0")" -ge "$limit_ms" ]; then
            KEEL_WAITED_MS=$(elapsed "$t0")
            return 1
        fi
        sleep 0.1
    done
}

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll, and fail with DESCRIPTION on timeout.
wait_until() {
    local limit=$1 what=$2
    shift 2
    poll "$limit" "$@" || fail "timed out after ${limit}s waiting for: $what"
    log "$what (after ${KEEL_WAITED_MS} ms)"
}

# guest_log NAME: path of guest NAME's console log (written by xenconsoled).
guest_log() { echo "$KEEL_LOG_DIR/guest-$1.log"; }

# wait_log FILE REGEX TIMEOUT_S: wait until FILE has a line matching the extended REGEX.
wait_log() {
    local file=$1 re=$2 limit=$3
    if ! poll "$limit" grep -Eq -- "$re" "$file"; then
        echo "---- last lines of $file:"
        if [ -f "$file" ]; then tail -n 20 "$file" | sed 's/^/    | /'; else echo "    (no such file)"; fi
        fail "timed out after ${limit}s waiting for /$re/ in $file"
    fi
    log "found /$re/ in $(basename "$file") after ${KEEL_WAITED_MS} ms"
}

# wait_guest_log NAME REGEX TIMEOUT_S: wait_log on guest NAME's console log.
wait_guest_log() { wait_log "$(guest_log "$1")" "$2" "$3"; }

# wait_dmesg REGEX TIMEOUT_S: wait until `xl dmesg` (Xen's console: port 0xE9 output of
# guests appears there as "(dN) text") has a line matching REGEX.
_keel_dmesg_has() { grep -Eq -- "$1" <<<"$(xl dmesg 2>/dev/null)"; }
wait_dmesg() {
    local re=$1 limit=$2
    if ! poll "$limit" _keel_dmesg_has "$re"; then
        echo "---- last lines of xl dmesg:"
        xl dmesg 2>&1 | tail -n 20 | sed 's/^/    | /'
        fail "timed out after ${limit}s waiting for /$re/ in xl dmesg"
    fi
    log "found /$re/ in xl dmesg after ${KEEL_WAITED_MS} ms"
}

# dom_state NAME: the State column of `xl list NAME` (e.g. "-b----"), empty if no such domain.
dom_state() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }'; }

# wait_state NAME STATE TIMEOUT_S: wait until domain NAME's state has flag STATE:
# r running, b blocked, p paused, s shutdown, c crashed, d dying (or the full word).
_keel_state_has() { local s; s=$(dom_state "$1"); [ -n "$s" ] && [[ $s == *"$2"* ]]; }
wait_state() {
    local name=$1 flag=$2 limit=$3
    case $flag in
        running) flag=r ;; blocked) flag=b ;; paused) flag=p ;;
        shutdown) flag=s ;; crashed) flag=c ;; dying) flag=d ;;
        [rbpscd]) ;;
        *) fail "wait_state: unknown state '$flag' (use r b p s c d)" ;;
    esac
    if ! poll "$limit" _keel_state_has "$name" "$flag"; then
        echo "---- xl list:"
        xl list 2>&1 | sed 's/^/    | /'
        fail "timed out after ${limit}s waiting for domain $name to reach state '$flag' (now '$(dom_state "$name")')"
    fi
    log "domain $name in state '$(dom_state "$name")' after ${KEEL_WAITED_MS} ms"
}

# wait_gone NAME TIMEOUT_S: wait until domain NAME no longer exists.
_keel_gone() { ! xl domid "$1" >/dev/null 2>&1; }
wait_gone() {
    local name=$1 limit=$2
    if ! poll "$limit" _keel_gone "$name"; then
        echo "---- xl list:"
        xl list 2>&1 | sed 's/^/    | /'
        fail "timed out after ${limit}s waiting for domain $name to go away"
    fi
    log "domain $name gone after ${KEEL_WAITED_MS} ms"
}

# xl_create CONFIG [KEY=VALUE...]: `xl create`, failing the scenario with xl's output on error.
# A bare NAME means /scenario/apps/NAME.xl, or with KEEL_GUEST_TYPE=pv (run-scenario.sh
# --guest-type pv) NAME-pv.xl created under the name NAME (a name= of the caller still wins).
# Sets KEEL_CREATED_MS (time of the create).
KEEL_GUEST_TYPE=${KEEL_GUEST_TYPE:-pvh}
xl_create() {
    local cfg=$1 out rc
    shift
    if [ ! -f "$cfg" ] && [[ $cfg != */* ]] && [ "$KEEL_GUEST_TYPE" = pv ]; then
        set -- "name=\"$cfg\"" "$@"
        cfg=$KEEL_APPS/$cfg-pv.xl
    fi
    [ -f "$cfg" ] || [[ $cfg == */* ]] || cfg=$KEEL_APPS/$cfg.xl
    [ -f "$cfg" ] || fail "xl_create: no config $cfg"
    log "xl create $cfg $*"
    KEEL_CREATED_MS=$(now_ms)
    out=$(xl create "$cfg" "$@" 2>&1) && rc=0 || rc=$?
    if [ $rc -ne 0 ]; then
        printf '%s\n' "$out" | sed 's/^/    | /'
        fail "xl create $cfg failed (status $rc)"
    fi
    log "created $(basename "$cfg" .xl) in $(elapsed "$KEEL_CREATED_MS") ms"
}

# start_httpd IP SERVE_TIMEOUT_S TIMING_NAME: xl_create the httpd guest, wait up to SERVE_TIMEOUT_S
# for it to log that it serves on port 80 and up to 20 s for IP to answer ping, then report the
# time from the create to the ping answer as KEEL-TIMING TIMING_NAME.
start_httpd() {
    local ip=$1 serve_limit=$2 name=$3 t0
    xl_create httpd
    t0=$KEEL_CREATED_MS
    wait_guest_log httpd 'httpd: serving on port 80' "$serve_limit"
    wait_until 20 "ping answers" ping -c 1 -W 1 "$ip"
    timing "$name" "$(elapsed "$t0")"
}

# xl_destroy NAME: destroy domain NAME (fails the scenario if it exists and cannot be destroyed).
xl_destroy() {
    xl domid "$1" >/dev/null 2>&1 || return 0
    xl destroy "$1" || fail "xl destroy $1 failed"
    wait_gone "$1" 10
}
