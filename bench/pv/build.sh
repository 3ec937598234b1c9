#!/bin/bash
# Pack time, on the build host: hello's size without debug information (the same ELF boots
# either way).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cp "$here/../lib.sh" "$1/bench-lib.sh"
img=$here/../../build/apps/hello/hello.xen
strip --strip-debug -o "$1/hello.stripped" "$img"
stat -c %s "$1/hello.stripped" > "$1/keel-image-bytes"
rm "$1/hello.stripped"
