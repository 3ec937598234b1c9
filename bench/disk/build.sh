#!/bin/bash
exec "$(dirname "$0")/../linux-guest/build.sh" "$@"
