#!/bin/bash
# Crash dumps (README, "Debug from dom0"): faults reads through a null pointer and crashes (its
# xl config keeps a crashed domain: on_crash = "preserve"), `xl dump-core` writes the dump,
# tools/dumpcore/keel-core turns it into an ELF core, and gdb with faults.xen unwinds from the
# trap handler through trap_common (its CFI in entry.S) into the faulting function and on to its
# caller. A page fault rather than keel::panic: the unwind through the exception entry is the
# harder path (a panic's backtrace is plain C++ frames; checked by hand, tools/dumpcore/README.md).
# One dump only: dumping a PVH guest reads its whole guest-physical range through QEMU's
# emulation. `on_crash = "coredump-destroy"` writes the same format (xl calls the same libxc
# dump) but took 572-671 s for faults' 8 MiB here, `xl dump-core` of the preserved domain 212 s.
source /scenario/lib.sh
command -v gdb >/dev/null || fail "no gdb in dom0 (testbed/build-host.sh DOM0_PACKAGES)"
[ -x /scenario/keel-core ] || fail "keel-core was not shipped (run-scenario.sh --file tools/dumpcore/keel-core)"

# examine CORE NAME REGEX...: convert, bt in gdb; each REGEX must match a frame line, in order.
examine() {
    local core=$1 name=$2 t0 out frames
    shift 2
    log "$name: dump-core file of $(stat -c %s "$core") bytes"
    t0=$(now_ms)
    check python3 /scenario/keel-core "$core" "/tmp/$name.elf"
    timing "${name}_convert" "$(elapsed "$t0")"
    t0=$(now_ms)
    out=$(timeout 300 gdb -nx -batch -ex 'set pagination off' -ex bt -ex 'info registers rip rsp' \
        /scenario/apps/faults.xen "/tmp/$name.elf" 2>&1) || fail "$name: gdb failed: $out"
    timing "${name}_gdb_bt" "$(elapsed "$t0")"
    sed 's/^/    | /' <<<"$out"
    frames=$(grep -E '^#[0-9]+ ' <<<"$out") || fail "$name: gdb printed no backtrace"
    local wants=("$@") i=0 line
    while IFS= read -r line; do
        if [ "$i" -lt "${#wants[@]}" ] && grep -Eq -- "${wants[i]}" <<<"$line"; then i=$((i + 1)); fi
    done <<<"$frames"
    [ "$i" -eq "${#wants[@]}" ] || fail "$name: no frame matches '${wants[i]}' after the frames for: ${wants[*]:0:i}"
    pass "$name: gdb's backtrace from the converted core has, in order: $*"
}

xl_create faults 'name="faults-null"' 'cmdline="fault=null"'
wait_guest_log faults-null 'null pointer' 30
wait_state faults-null c 30
t0=$(now_ms)
check xl dump-core faults-null /tmp/null.core
timing null_dump_core "$(elapsed "$t0")"
check xl destroy faults-null
examine /tmp/null.core null '<signal handler called>' \
    ' in (\(anonymous namespace\)::)?null_read ' ' in \(anonymous namespace\)::Faults::run'
