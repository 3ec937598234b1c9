#!/bin/bash
# Pack time, on the build host: the Linux guest's parts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/../linux-guest/build.sh" "$1"
