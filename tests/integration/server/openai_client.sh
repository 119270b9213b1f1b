#!/usr/bin/env bash
# CTest server_openai_client: `herd serve` on a synthetic tiny model, driven by the official
# openai npm client (tools/openai-client, pinned; installed by tools/install-references.sh).
# usage: openai_client.sh HERD SOURCE_DIR WORK_DIR
set -euo pipefail
herd=$1 src=$2 work=$3
client="$src/tools/openai-client"
if [ ! -d "$client/node_modules/openai" ]; then
  echo "FAIL: the openai client is not installed (run tools/install-references.sh or make deps)"
  exit 1
fi
mkdir -p "$work"
[ -f "$work/tiny/config.json" ] || "$herd" synth --preset tiny -o "$work/tiny" >/dev/null
exec node "$client/server_test.mjs" "$herd" "$work/tiny"
