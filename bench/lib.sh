# Sourced in dom0 by every bench's run.sh (each build.sh ships it as /scenario/bench-lib.sh):
# the result lines bench/compare.sh turns into a table. Never asserts.

# Repetitions of every measured row (each row is their median, with min..max beside it).
BENCH_REPS=${BENCH_REPS:-3}

# bench NAME SYSTEM VALUE: one result line.
bench() { echo "KEEL-BENCH $1 $2 $3"; }

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
