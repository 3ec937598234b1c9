#!/bin/bash
# Builds Debian's own QEMU (the source package of the installed qemu-system-x86) with one fix to
# its emulation of AMD SVM, and prints the path of the resulting qemu-system-x86_64:
#   $CACHE/qemu-svm-fix/qemu-system-x86_64   (CACHE as in build-host.sh)
#
# The fault (docs/testbed.md, "The Linux guest's panics"): when VMRUN injects an external
# interrupt (EVENTINJ type INTR), QEMU 7.2 delivers it at once but leaves the vector in the
# vCPU's exception_index. If an exit request (a kick from another thread: a timer, the
# round-robin scheduler) is the next thing the execution loop sees, that stale index is taken
# for a pending exception and the vector is delivered a second time, on top of the first frame,
# before the handler's first instruction. A Linux guest interrupted in user mode then enters the
# handler again in kernel mode without swapgs and dies; keel's handler runs twice harmlessly.
# The fix clears exception_index once the injected interrupt has been delivered, as the
# execution loop does after every interrupt it delivers itself.
#
# Used by the benchmarks (bench/compare.sh) so that the Linux comparison guest survives; the
# tests keep Debian's binary. Cached by the contents of this script and the source version:
# a no-op when both are unchanged. A cold build takes about 10-15 minutes on 2 cores.
# Needs apt's deb-src entry for bookworm main (scripts/fetch-lwip.sh adds it when the build
# fetches lwIP) and root or sudo -n for its build dependencies.
# Environment: KEEL_TESTBED_CACHE (see build-host.sh), KEEL_QEMU_FORCE=1 rebuild anyway.
set -euo pipefail
{

say() { echo "build-qemu: $*" >&2; }
die() { say "$*"; exit 1; }

CACHE=${KEEL_TESTBED_CACHE:-$HOME/.cache/keel-testbed}
OUT=$CACHE/qemu-svm-fix
BIN=$OUT/qemu-system-x86_64
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install build dependencies"
    SUDO=(sudo -n)
fi

version=$(dpkg-query -W -f='${source:Version}' qemu-system-x86 2>/dev/null) ||
    die "qemu-system-x86 is not installed (scripts/install-deps.sh installs it)"
key="$(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1) $version"
if [ "${KEEL_QEMU_FORCE:-0}" != 1 ] && [ -x "$BIN" ] && [ "$(cat "$OUT/KEY" 2>/dev/null)" = "$key" ]; then
    echo "$BIN"
    exit 0
fi

# What a minimal x86_64-softmmu build of Debian's tree needs beyond install-deps.sh's packages
# (the dfsg tarball has no bundled meson or dtc).
deps=(dpkg-dev meson ninja-build pkg-config libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >&2 || die "apt-get install failed"
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/.qemu-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "apt-get source qemu=$version (Debian's QEMU, as installed)"
(cd "$work" && apt-get source -q "qemu=$version" >&2) ||
    die "apt-get source qemu=$version failed (is there a deb-src entry for bookworm main?)"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -n 1)
[ -n "$src" ] || die "apt-get source produced no qemu-* tree"

# The fix: one line after the INTR case's delivery in helper_vmrun. The anchor must occur
# exactly once; if QEMU's code moved on, stop rather than build something unknown.
helper=$src/target/i386/tcg/sysemu/svm_helper.c
python3 - "$helper" <<'EOF' || die "could not apply the SVM injection fix to $helper"
import sys
path = sys.argv[1]
text = open(path).read()
anchor = "do_interrupt_x86_hardirq(env, vector, 1);\n"
if text.count(anchor) != 1:
    sys.exit("anchor found %d times, expected once" % text.count(anchor))
at = text.index(anchor) + len(anchor)
indent = text[text.rindex("\n", 0, at - len(anchor)) + 1:at - len(anchor)]
fix = indent + "cs->exception_index = -1;  /* keel: delivered; not again (testbed/build-qemu.sh) */\n"
open(path, "w").write(text[:at] + fix + text[at:])
EOF

say "configure and build qemu-system-x86_64 (x86_64-softmmu only, no optional features)"
mkdir "$work/build"
(cd "$work/build" &&
    "$src/configure" --target-list=x86_64-softmmu --without-default-features --enable-fdt=system \
        --disable-docs --disable-werror --disable-tools \
        --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu >"$work/configure.log" 2>&1 ||
    { tail -n 30 "$work/configure.log" >&2; die "configure failed"; })
(cd "$work/build" && ninja qemu-system-x86_64 >"$work/ninja.log" 2>&1) ||
    { tail -n 30 "$work/ninja.log" >&2; die "build failed"; }

rm -rf "$OUT.new"
mkdir -p "$OUT.new"
cp "$work/build/qemu-system-x86_64" "$OUT.new/"
echo "$key" >"$OUT.new/KEY"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
say "built $BIN"
echo "$BIN"
exit 0
}
