#!/bin/bash
# Pack-time helper of the comparison benchmarks (run on the build host by their build.sh):
# ships the Linux guest's kernel (the testbed's Debian kernel) and the initramfs builder.
set -euo pipefail
stage=$1
here=$(cd "$(dirname "$0")" && pwd)
cache=${KEEL_TESTBED_CACHE:-$HOME/.cache/keel-testbed}
cp "$cache/vmlinuz" "$stage/vmlinuz"
mkdir -p "$stage/linux-guest"
cp "$here/mkinitrd.sh" "$here/lib.sh" "$stage/linux-guest/"
cp "$here/../lib.sh" "$stage/bench-lib.sh"
