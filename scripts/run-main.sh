#!/usr/bin/env bash
# Installs what is missing, builds, boots the main app in the nested Xen host and shows its
# console as seen from dom0 (xl create, the guest's console log, xl shutdown).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
"$root/testbed/build-host.sh"
logs="$root/build/main-logs"
status=0
"$root/testbed/run-scenario.sh" "$root/testbed/main" --apps "$root/build/apps" --logs "$logs" || status=$?
echo "==== guest console (from dom0's xenconsoled log) ===="
cat "$logs"/guest-*.log 2>/dev/null || true
exit "$status"
