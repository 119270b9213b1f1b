#!/usr/bin/env bash
# Installs the pinned npm references used by tests: every tools/<name>/ with a package-lock.json
# is installed with `npm ci` (scripts off; each folder's README says what it holds).
set -euo pipefail
cd "$(dirname "$0")"
for lock in */package-lock.json; do
  [ -f "$lock" ] || continue
  dir=$(dirname "$lock")
  stamp="$dir/node_modules/.herd-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$lock" ]; then continue; fi
  echo "npm ci in tools/$dir"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund)
  touch "$stamp"
done
