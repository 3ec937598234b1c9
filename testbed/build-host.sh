#!/bin/bash
# Builds the nested Xen test host from Debian packages only (see docs/testbed.md):
#   $CACHE/xen           Xen 4.17 hypervisor (gunzipped multiboot ELF), from xen-hypervisor-4.17-amd64
#   $CACHE/vmlinuz       Debian's 6.1 amd64 kernel, for dom0
#   $CACHE/vmlinux       the same, decompressed (Xen boots it much faster under TCG)
#   $CACHE/dom0.cpio.gz  dom0 root: debootstrap'd minbase + toolstack + a few modules + our /init
# CACHE = ${KEEL_TESTBED_CACHE:-$HOME/.cache/keel-testbed}. The cache is keyed by the contents of
# this script and of dom0-init.sh: when neither changed and all artifacts exist, this is a no-op.
# debootstrap's output is kept as $CACHE/base-root.tar (keyed by suite, mirror and package list),
# so a change of dom0-init.sh or of the steps after debootstrap skips the download and install
# (about half of a cold build's time).
# Needs root for debootstrap (uses sudo -n when not root).
#
# Environment:
#   KEEL_TESTBED_CACHE   cache directory (see above)
#   KEEL_TESTBED_MIRROR  Debian mirror for debootstrap (default: the host's apt source for the suite)
#   KEEL_TESTBED_SUITE   Debian suite (default bookworm; Xen 4.17 is bookworm's)
#   KEEL_TESTBED_FORCE=1 rebuild even when the cache is current
set -euo pipefail
# The body is a single block: bash reads all of it before running it, so changing this file while
# it runs (an edit, a git checkout during a test) cannot make a running instance execute a mix.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KEEL_TESTBED_CACHE:-$HOME/.cache/keel-testbed}
SUITE=${KEEL_TESTBED_SUITE:-bookworm}
XEN_PKG=xen-hypervisor-4.17-amd64
XEN_UTILS_PKG=xen-utils-4.17
INIT_SRC=$HERE/dom0-init.sh

# Packages of the dom0 root, on top of debootstrap's minbase. nginx-light and redis-server are
# not run in dom0: bench/linux-guest/mkinitrd.sh builds the Linux comparison guest from them.
# gdb talks to tools/gdbserver; debootstrap does not resolve the virtual package its
# libsource-highlight needs (libboost-regex1.74.0-icu72), so the real one is listed too.
DOM0_PACKAGES=(
    xen-utils-4.17 iproute2 kmod bridge-utils busybox procps iputils-ping
    curl wrk apache2-utils redis-tools dnsmasq-base netcat-openbsd tcpdump
    nginx-light redis-server cpio e2fsprogs gdb libboost-regex1.74.0
)
# Kernel modules dom0 loads (dom0-init.sh), and the frontends and ext4 the Linux comparison guest loads
# (bench/linux-guest); their dependencies are added automatically.
DOM0_MODULES=(
    xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback xen-blkback
    bridge stp llc loop xen-netfront xen-blkfront ext4 crc32c_generic
)

log() { echo "[build-host] $*"; }
die() { echo "[build-host] ERROR: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
T_START=$(now_ms)
step_t0=0
step() { step_t0=$(now_ms); log "$* ..."; }
step_done() { local d=$(( $(now_ms) - step_t0 )); log "  done in $((d / 1000)).$(printf %03d $((d % 1000)))s"; }

key=$(cat "${BASH_SOURCE[0]}" "$INIT_SRC" | sha256sum | cut -c1-32)
have_all() {
    [ -s "$CACHE/xen" ] && [ -s "$CACHE/vmlinuz" ] && [ -s "$CACHE/dom0.cpio.gz" ] &&
        [ "$(cat "$CACHE/key" 2>/dev/null)" = "$key" ]
}
if [ "${KEEL_TESTBED_FORCE:-0}" != 1 ] && have_all; then
    log "cache current ($CACHE, key $key)"
    exit 0
fi

# ---- from here on we build; one build at a time per cache directory -----------------------
for tool in debootstrap apt-get apt-cache dpkg dpkg-deb depmod modprobe cpio gzip xz flock sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing: run scripts/install-deps.sh"
done
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "debootstrap needs root: run as root or install sudo"
    SUDO=(sudo -n)
fi
as_root() { "${SUDO[@]}" "$@"; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
    log "another build holds $CACHE/.lock; waiting"
    flock 9
fi
if [ "${KEEL_TESTBED_FORCE:-0}" != 1 ] && have_all; then
    log "cache was built by another process meanwhile"
    exit 0
fi

BUILD=$(mktemp -d "$CACHE/build.XXXXXX")
ROOT=$BUILD/root
cleanup() {
    # debootstrap may leave mounts (proc, sys, bind-mounted /dev entries in containers) in the
    # target when it fails: unmount them before deleting anything.
    if [ -d "$BUILD" ]; then
        awk -v p="$BUILD/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do as_root umount -l "$m" 2>/dev/null || true; done
        as_root rm -rf --one-file-system "$BUILD"
    fi
}
trap cleanup EXIT
chmod 755 "$BUILD"   # apt-get download runs as _apt when it can read the directory

# ---- package resolution ------------------------------------------------------------------
step "resolving packages"
policy=$(apt-cache policy linux-image-amd64 2>/dev/null || true)
if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    log "apt has no package lists; running apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
fi
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9].*-amd64$/ && !n++ { print $2 }')
[ -n "$KPKG" ] || die "cannot resolve the kernel package linux-image-amd64 depends on"
KVER=${KPKG#linux-image-}
if [ -n "${KEEL_TESTBED_MIRROR:-}" ]; then
    MIRROR=$KEEL_TESTBED_MIRROR
else
    MIRROR=$(apt-cache policy 2>/dev/null |
        awk -v s=" $SUITE/main amd64 Packages" 'index($0, s) && !n++ { print $2 }')
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
log "kernel package $KPKG, mirror $MIRROR, suite $SUITE"
step_done

# ---- dom0 root ---------------------------------------------------------------------------
# debootstrap's result is kept as base-root.tar, keyed by suite, mirror and package list, so that
# changing dom0-init.sh or the trimming below does not download the packages again.
base_key=$(echo "$SUITE $MIRROR ${DOM0_PACKAGES[*]} base-v1" | sha256sum | cut -c1-32)
if [ "${KEEL_TESTBED_FORCE:-0}" != 1 ] && [ -s "$CACHE/base-root.tar" ] &&
    [ "$(cat "$CACHE/base-root.key" 2>/dev/null)" = "$base_key" ]; then
    step "unpacking the cached debootstrap result (base-root.tar)"
    as_root mkdir -p "$ROOT"
    as_root tar -C "$ROOT" --numeric-owner -xpf "$CACHE/base-root.tar"
    step_done
else
    step "debootstrap $SUITE minbase into the dom0 root"
    include=$(IFS=,; echo "${DOM0_PACKAGES[*]}")
    if ! as_root debootstrap --variant=minbase --include="$include" "$SUITE" "$ROOT" "$MIRROR" \
        >"$BUILD/debootstrap.log" 2>&1; then
        tail -n 40 "$BUILD/debootstrap.log" >&2
        [ -f "$ROOT/debootstrap/debootstrap.log" ] && as_root tail -n 40 "$ROOT/debootstrap/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    step_done
    step "saving base-root.tar"
    rm -f "$CACHE/base-root.key"
    as_root tar -C "$ROOT" --numeric-owner -cf "$BUILD/base-root.tar" .
    as_root chown "$(id -u):$(id -g)" "$BUILD/base-root.tar"
    mv -f "$BUILD/base-root.tar" "$CACHE/base-root.tar"
    echo "$base_key" >"$CACHE/base-root.key"
    step_done
fi

# The hypervisor must match the toolstack in the dom0 root (libxc talks to Xen's domctl ABI), so
# take the hypervisor of the very version debootstrap installed (the suite's, without security
# updates: debootstrap installs from a single archive).
UTILS_VER=$(dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Version}' "$XEN_UTILS_PKG")
[ -n "$UTILS_VER" ] || die "$XEN_UTILS_PKG is not installed in the dom0 root"

# ---- hypervisor and kernel -------------------------------------------------------------------
step "downloading $XEN_PKG=$UTILS_VER and $KPKG"
mkdir -p "$BUILD/deb" && chmod 777 "$BUILD/deb"
( cd "$BUILD/deb" && apt-get download -q "$XEN_PKG=$UTILS_VER" "$KPKG" ) >"$BUILD/download.log" 2>&1 ||
    { cat "$BUILD/download.log" >&2; die "apt-get download failed"; }
step_done

step "extracting hypervisor and kernel"
dpkg -x "$BUILD"/deb/"${XEN_PKG}"_*.deb "$BUILD/xenpkg"
xengz=$(find "$BUILD/xenpkg/boot" -name 'xen-4.17*-amd64.gz' -print -quit)
[ -n "$xengz" ] || die "no /boot/xen-4.17*.gz in $XEN_PKG"
gunzip -c "$xengz" >"$BUILD/xen"
dpkg -x "$BUILD"/deb/"${KPKG}"_*.deb "$BUILD/kernel"
cp "$BUILD/kernel/boot/vmlinuz-$KVER" "$BUILD/vmlinuz"
# The same kernel decompressed: Xen's own xz decompression of the bzImage took 14-27 s under
# TCG on a busy machine, loading the plain ELF takes none. run-scenario.sh boots vmlinux when it exists.
off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$BUILD/vmlinuz" | cut -d: -f1 || true)
# (through a file: xz stops at the end of its stream, which would break a pipe under pipefail)
if [ -n "$off" ] && tail -c +$((off + 1)) "$BUILD/vmlinuz" >"$BUILD/vmlinuz.xz" &&
    xz -dc --single-stream "$BUILD/vmlinuz.xz" >"$BUILD/vmlinux" 2>/dev/null &&
    [ "$(head -c 4 "$BUILD/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    log "  vmlinux: $(( $(stat -c %s "$BUILD/vmlinux") / 1048576 )) MiB"
else
    log "  warning: cannot decompress the kernel (no xz payload?); dom0 boots from vmlinuz"
    rm -f "$BUILD/vmlinux"
fi
KMOD=$BUILD/kernel/lib/modules/$KVER
[ -d "$KMOD" ] || die "no lib/modules/$KVER in $KPKG"
step_done

step "copying ${#DOM0_MODULES[@]} kernel modules and their dependencies"
depmod -b "$BUILD/kernel" "$KVER"
RMOD=$ROOT/usr/lib/modules/$KVER
as_root mkdir -p "$RMOD"
nmods=0
for m in "${DOM0_MODULES[@]}"; do
    deps=$(modprobe -d "$BUILD/kernel" -S "$KVER" --show-depends "$m") ||
        die "module $m not found in $KPKG"
    while read -r kind path _; do
        [ "$kind" = insmod ] || continue     # "builtin NAME": nothing to copy
        rel=${path#"$KMOD"/}
        if [ ! -e "$RMOD/$rel" ]; then
            as_root install -D -m 644 "$path" "$RMOD/$rel"
            nmods=$((nmods + 1))
        fi
    done <<<"$deps"
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ -e "$KMOD/$f" ] && as_root cp "$KMOD/$f" "$RMOD/$f"
done
as_root depmod -b "$ROOT" "$KVER"
log "  $nmods module files"
step_done

step "configuring and trimming the dom0 root"
as_root install -m 755 "$INIT_SRC" "$ROOT/init"
# shellcheck disable=SC2016  # (expanded by the inner shell)
as_root sh -e -c '
    r=$1
    echo dom0 >"$r/etc/hostname"
    printf "127.0.0.1 localhost\n127.0.1.1 dom0\n10.0.0.1 dom0-bridge\n" >"$r/etc/hosts"
    : >"$r/etc/resolv.conf"
    mkdir -p "$r/var/log/xen/console" "$r/var/lib/xenstored" "$r/scenario"
    # Device nodes the kernel needs before /init mounts devtmpfs.
    [ -e "$r/dev/console" ] || mknod -m 600 "$r/dev/console" c 5 1
    [ -e "$r/dev/null" ] || mknod -m 666 "$r/dev/null" c 1 3
    rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* \
        "$r"/usr/share/lintian "$r"/usr/share/bug "$r"/usr/share/common-licenses \
        "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
        "$r"/var/cache/debconf/*-old "$r"/var/log/*.log "$r"/var/log/apt/* \
        "$r"/etc/udev/hwdb.bin "$r"/usr/lib/udev/hwdb.bin "$r"/usr/lib/udev/hwdb.d "$r"/debootstrap \
        "$r"/usr/lib/xen-*/boot/xen-shim \
        "$r"/usr/lib/python3*/ensurepip "$r"/usr/lib/python3*/idlelib "$r"/usr/lib/python3*/pydoc_data \
        "$r"/usr/lib/python3*/lib2to3
    # Character-set converters: keep only the Unicode ones.
    find "$r"/usr/lib/x86_64-linux-gnu/gconv -name "*.so" ! -name "UTF-*" ! -name "UNICODE.so" -delete
    # Time zones: UTC only.
    find "$r"/usr/share/zoneinfo -mindepth 1 ! -name UTC ! -name Etc ! -path "*/Etc/UTC" -delete 2>/dev/null || true
    find "$r/usr/lib/python3"* -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
' sh "$ROOT"
step_done

step "packing dom0.cpio.gz"
( cd "$ROOT" && as_root find . -xdev -print0 | LC_ALL=C sort -z |
    as_root cpio --null -o -H newc -R 0:0 --quiet ) | gzip -6 >"$BUILD/dom0.cpio.gz"
usize=$(as_root du -sm --apparent-size "$ROOT" | cut -f1)
log "  root ${usize} MiB unpacked, $(( $(stat -c %s "$BUILD/dom0.cpio.gz") / 1048576 )) MiB packed"
step_done

# ---- publish -------------------------------------------------------------------------------
{
    echo "key $key"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "suite $SUITE mirror $MIRROR"
    echo "hypervisor $XEN_PKG $UTILS_VER"
    echo "toolstack $XEN_UTILS_PKG $UTILS_VER"
    echo "kernel $KPKG $(dpkg-deb -f "$BUILD"/deb/"${KPKG}"_*.deb Version)"
    echo "dom0 packages ${DOM0_PACKAGES[*]}"
    echo "dom0 modules ${DOM0_MODULES[*]}"
} >"$BUILD/manifest"
rm -f "$CACHE/key"
rm -f "$CACHE/vmlinux"
for f in xen vmlinuz vmlinux dom0.cpio.gz manifest; do
    [ ! -e "$BUILD/$f" ] || mv -f "$BUILD/$f" "$CACHE/$f"
done
echo "$key" >"$CACHE/key"
cleanup
trap - EXIT
total=$(( $(now_ms) - T_START ))
log "built $CACHE in $((total / 1000)).$(printf %03d $((total % 1000)))s:"
sed 's/^/[build-host]   /' "$CACHE/manifest"
exit 0
}
