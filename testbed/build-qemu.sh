#!/bin/bash
# Builds Debian's own QEMU (the source package of the installed qemu-system-x86) with one fix to
# its emulation of AMD SVM, and prints the path of the resulting qemu-system-x86_64:
#   $CACHE/qemu-svm-fix/qemu-system-x86_64   (CACHE as in build-host.sh)
#
# The fault (docs/testbed.md, "The Linux guest's panics"): when VMRUN injects an external
# interrupt (EVENTINJ type INTR), QEMU 7.2 delivers it at once but leaves the vector in the
# vCPU's exception_index. If an exit request (a kick from another thread: a timer, the
# round-robin scheduler) reaches the execution loop before anything else resets that index, the
# stale vector is taken for a pending exception and delivered a second time. A Linux guest
# interrupted in user mode then enters the handler again in kernel mode without swapgs and dies.
# The fix clears exception_index once the injected interrupt has been delivered, as the
# execution loop does after every interrupt it delivers itself.
#
# Not Debian's binary plus one line: a minimal x86_64-softmmu build (no optional features: no
# slirp, no KVM; -O2 -g, QEMU's default), from Debian's patched source of the installed version
# (or, if apt no longer offers that, the newest 7.2 source it does; $OUT/VERSION says which).
# `--version` prints "(keel-svm-fix ...)" where Debian's binary prints "(Debian ...)".
# Used by the benchmarks (bench/compare.sh) so that the Linux comparison guest survives; the
# tests keep Debian's binary. Cached by RECIPE (the fix and the configure flags) and the
# installed version: a no-op when both are unchanged. A cold build takes about 6 minutes on 2
# cores, with the source download (24 MB); its log stays in $CACHE/qemu-svm-fix.log.
# Needs apt's deb-src entry for bookworm main (scripts/fetch-lwip.sh adds it when the build
# fetches lwIP); root or sudo -n only when build dependencies are missing (scripts/install-deps.sh).
# Environment: KEEL_TESTBED_CACHE (see build-host.sh), KEEL_QEMU_FORCE=1 rebuild anyway (unless
# another process is building it at that moment: then its result is taken).
set -euo pipefail
{

say() { echo "build-qemu: $*" >&2; }
die() { say "$*"; exit 1; }

CACHE=${KEEL_TESTBED_CACHE:-$HOME/.cache/keel-testbed}
OUT=$CACHE/qemu-svm-fix
BIN=$OUT/qemu-system-x86_64
LOG=$CACHE/qemu-svm-fix.log
FIX="cs->exception_index = -1;  /* keel: delivered; not again (testbed/build-qemu.sh) */"
CONFIGURE=(--target-list=x86_64-softmmu --without-default-features --enable-fdt=system
    --with-pkgversion=keel-svm-fix
    --disable-docs --disable-werror --disable-tools
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu)
RECIPE="$FIX ${CONFIGURE[*]}"

installed=$(dpkg-query -W -f='${source:Version}' qemu-system-x86 2>/dev/null) ||
    die "qemu-system-x86 is not installed (scripts/install-deps.sh installs it)"
key_of() { echo "$(sha256sum <<<"$RECIPE" | cut -d' ' -f1) $1"; }
current() {   # true when the cached binary was built by this recipe and runs
    [ -x "$BIN" ] && [ "$(cat "$OUT/KEY" 2>/dev/null)" = "$(key_of "$installed")" ] &&
        "$BIN" --version >/dev/null 2>&1
}
if [ "${KEEL_QEMU_FORCE:-0}" != 1 ] && current; then
    echo "$BIN"
    exit 0
fi

mkdir -p "$CACHE"
exec 8>"$CACHE/.qemu.lock"
waited=0
if ! flock -n 8; then
    say "another build holds $CACHE/.qemu.lock; waiting"
    flock 8
    waited=1
fi
# Built by another process between the check above and the lock?
if { [ "${KEEL_QEMU_FORCE:-0}" != 1 ] || [ "$waited" = 1 ]; } && current; then
    echo "$BIN"
    exit 0
fi
rm -rf "$CACHE"/.qemu-build.*   # left by a build that was killed

# What a minimal x86_64-softmmu build of Debian's tree needs beyond install-deps.sh's packages
# (the dfsg tarball has no bundled meson or dtc). install-deps.sh prints on stdout: ours is the path.
"$(dirname "${BASH_SOURCE[0]}")/../scripts/install-deps.sh" \
    dpkg-dev meson ninja-build pkg-config libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev >&2 ||
    die "could not install the build dependencies"

work=$(mktemp -d "$CACHE/.qemu-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
: >"$LOG"
# The installed version's source; if apt no longer offers it (a point release replaced it, or
# it came from a suite without a deb-src entry), the newest source of the same upstream release
# apt knows (the fix is written against 7.2), said so.
version=$installed
if ! (cd "$work" && apt-get source -q "qemu=$version" >>"$LOG" 2>&1); then
    upstream=${installed#*:}
    upstream=${upstream%%-*}
    version=$(apt-cache showsrc qemu 2>/dev/null | awk -v u="$upstream" '
        /^Version:/ { v = $2; w = v; sub(/^[0-9]+:/, "", w); sub(/-[^-]*$/, "", w); if (w == u) print v }' |
        sort -V | tail -n 1 || true)
    [ -n "$version" ] ||
        die "apt offers no source of qemu $upstream (a deb-src entry for bookworm main is needed: scripts/fetch-lwip.sh adds one when it fetches lwIP); log: $LOG"
    say "no source for the installed $installed; building $version instead"
    (cd "$work" && apt-get source -q "qemu=$version" >>"$LOG" 2>&1) ||
        die "apt-get source qemu=$version failed; log: $LOG"
fi
src=""
for d in "$work"/qemu-*/; do
    [ -f "$d/configure" ] && src=${d%/}
done
[ -n "$src" ] || die "apt-get source produced no qemu tree"
say "building qemu $version with the SVM injection fix (log: $LOG)"

# The fix: one line after the INTR case's delivery in helper_vmrun. The anchor must occur
# exactly once; if QEMU's code moved on, stop rather than build something unknown.
helper=$src/target/i386/tcg/sysemu/svm_helper.c
python3 - "$helper" "$FIX" <<'PY' || die "could not apply the SVM injection fix to $helper"
import sys
path, fix = sys.argv[1], sys.argv[2]
text = open(path).read()
anchor = "do_interrupt_x86_hardirq(env, vector, 1);\n"
if text.count(anchor) != 1:
    sys.exit("anchor found %d times, expected once" % text.count(anchor))
start = text.index(anchor)
line_start = text.rindex("\n", 0, start) + 1
indent = text[line_start:start]
at = start + len(anchor)
open(path, "w").write(text[:at] + indent + fix + "\n" + text[at:])
PY

mkdir "$work/build"
if ! (cd "$work/build" && "$src/configure" "${CONFIGURE[@]}" >>"$LOG" 2>&1 &&
        ninja qemu-system-x86_64 >>"$LOG" 2>&1); then
    tail -n 30 "$LOG" >&2
    die "configure or build failed; log: $LOG"
fi

# Copied out of the build tree: beside its build directory's qemu-bundle it would look for
# firmware there. Replaced atomically, so a bench already running keeps a whole binary.
mkdir -p "$OUT"
cp "$work/build/qemu-system-x86_64" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
echo "$version" >"$OUT/VERSION"
key_of "$installed" >"$OUT/KEY.tmp"
mv -f "$OUT/KEY.tmp" "$OUT/KEY"
say "built $BIN (qemu $version)"
echo "$BIN"
exit 0
}
