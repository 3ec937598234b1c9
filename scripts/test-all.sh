#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: host unit tests (label unit) and the
# nested-Xen scenarios (label nested), which boot the images in real Xen under QEMU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
"$root/testbed/build-host.sh"
cd "$root/build"
ctest --output-on-failure --timeout 900 "$@"
