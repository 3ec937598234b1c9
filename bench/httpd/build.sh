#!/bin/bash
# Pack time, on the build host: the Linux guest's parts, and the size of keel's image without
# debug information (what a deployment would ship; the .xen in build/ keeps DWARF for gdb).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/../linux-guest/build.sh" "$1"
img=$here/../../build/apps/httpd/httpd.xen
strip --strip-debug -o "$1/httpd.stripped" "$img"
stat -c %s "$1/httpd.stripped" > "$1/keel-image-bytes"
rm "$1/httpd.stripped"
