#!/bin/bash
# Builds tools/gdbserver for dom0 (against the host's libxen-dev, whose 4.17 libraries dom0's
# xen-utils-4.17 provides too) into the staged /scenario: run by testbed/run-scenario.sh.
set -euo pipefail
stage=${1:?usage: build.sh STAGE_DIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../tools/gdbserver/src" && pwd)
${CXX:-g++} -std=gnu++20 -O2 -g -Wall -Wextra -Wshadow -Werror -I"$src" -o "$stage/keel-gdbserver" \
    "$src"/packet.cc "$src"/session.cc "$src"/walk.cc "$src"/xen_target.cc "$src"/main.cc \
    -lxenctrl -lxenforeignmemory
