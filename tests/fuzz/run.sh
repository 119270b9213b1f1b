#!/usr/bin/env bash
# Builds (when sources changed) and runs the request fuzz target for SECONDS on a copy of the
# seed corpus; fails on any finding. usage: run.sh SOURCE_DIR WORK_DIR SECONDS
set -euo pipefail
src=$1 work=$2 secs=$3
mkdir -p "$work/corpus"
bin="$work/fuzz_request"
newest=$(find "$src/src/herd/server" "$src/src/herd/tokenizer" "$src/src/herd/base" \
  "$src/src/herd/runtime/request_check.cc" "$src/tests/fuzz" -newer "$bin" -name '*.[ch]*' \
  2>/dev/null | head -1 || true)
if [ ! -x "$bin" ] || [ -n "$newest" ]; then bash "$src/tests/fuzz/build.sh" "$src" "$bin"; fi
cp -n "$src"/tests/fuzz/corpus/* "$work/corpus/"
rc=0
"$bin" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 -artifact_prefix="$work/" \
  "$work/corpus" >"$work/fuzz.log" 2>&1 || rc=$?
grep -E "^(Done|stat::number_of_executed_units|INFO: seed corpus)|ERROR|SUMMARY" "$work/fuzz.log" || true
echo "corpus: $(ls "$work/corpus" | wc -l) inputs"
exit $rc
