#!/usr/bin/env bash
# g++ 12 miscompiles co_await inside a conditional expression (`c ? co_await a : ...`): nested
# ones call await_suspend more often than there are awaits, so a waiter registers twice and a
# connection's reads go astray (docs/cxx-subset.md). Fails with FILE:LINE: for each such line.
#   check-co-await.sh [ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$root"
if hits=$(grep -rnE --include='*.cc' --include='*.h' '(\?|^[[:space:]]*:)[^;]*co_await' \
              --exclude-dir='build*' --exclude-dir=.git . | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'); then
    echo "$hits" | sed -E 's/^(\.\/)?([^:]+:[0-9]+):.*/\2: co_await inside a conditional expression (use if\/else)/'
    exit 1
fi
