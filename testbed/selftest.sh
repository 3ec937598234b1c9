#!/bin/bash
# End-to-end check of the nested test host: installs what is missing, builds (or reuses) the
# host, builds the self-test guest, boots it in nested Xen and checks its port 0xE9 output.
#   testbed/selftest.sh [--logs DIR] [--timeout S] [--quiet]
# Exit status: that of testbed/run-scenario.sh (0 = pass).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/../scripts/install-deps.sh"
exec "$HERE/run-scenario.sh" "$HERE/selftest" --timeout 300 "$@"
