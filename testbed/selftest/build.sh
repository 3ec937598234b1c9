#!/bin/bash
# Builds the self-test guest (a PVH ELF written in GNU assembly) into OUTDIR (default: the
# current directory). testbed/run-scenario.sh calls it with the scenario's staging directory.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-.}
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m32 -c -fno-pie -o "$tmp/guest.o" "$HERE/guest.S"
ld -m elf_i386 -nostdlib --build-id=none -z noexecstack -T "$HERE/guest.ld" \
    -o "$OUT/keel-selftest.xen" "$tmp/guest.o"
# Refuse an image without the PVH entry note.
notes=$(readelf -n "$OUT/keel-selftest.xen")
if ! grep -q 'Xen.*0x00000012' <<<"$notes"; then
    echo "$notes" >&2
    echo "build.sh: keel-selftest.xen has no XEN_ELFNOTE_PHYS32_ENTRY note" >&2
    exit 1
fi
