#!/bin/bash
# Installs everything keel needs on a Debian bookworm host: the build tools, the unit-test
# framework, the Xen headers, and the tools of the nested Xen testbed (testbed/).
# Idempotent and fast when everything is already there (one dpkg-query call).
# Arguments: more packages to make sure of, for a script with needs of its own
# (testbed/build-qemu.sh).
# Runs non-interactively; as root, or through sudo when run as another user.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake g++ libgtest-dev libxen-dev binutils file
    # lwIP comes from its Debian source package (apt-get source needs dpkg-source)
    dpkg-dev
    # host tests of tools/dumpcore (ctest dumpcore, dumpcore_trap_unwind): without gdb they
    # skip gdb's checks, so a fresh machine must have it
    python3 gdb
    # testbed: emulator, dom0 root, archives, kernel modules, timeouts, locking
    qemu-system-x86 debootstrap debian-archive-keyring ca-certificates wget gpgv
    cpio gzip xz-utils kmod coreutils util-linux findutils apt dpkg
)
PACKAGES+=("$@")

missing=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for p in "${PACKAGES[@]}"; do
    if ! grep -q "^$p ii" <<<"$status"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "install-deps: installing: ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    else
        echo "install-deps: not root and sudo is not available; run as root" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
