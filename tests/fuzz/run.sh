#!/usr/bin/env bash
# Builds (when sources changed) and runs a fuzz target for SECONDS on a copy of its seed corpus
# (tests/fuzz/corpus for request, tests/fuzz/corpus_image for image); fails on any finding.
# usage: run.sh SOURCE_DIR WORK_DIR SECONDS [TARGET]
set -euo pipefail
src=$1 work=$2 secs=$3 target=${4:-request}
case $target in
  request) seeds=corpus max_len=4096 deps=("$src/src/herd/server" "$src/src/herd/runtime/request_check.cc") ;;
  image) seeds=corpus_image max_len=65536 deps=() ;;
  *) echo "unknown fuzz target $target" >&2; exit 2 ;;
esac
mkdir -p "$work/corpus"
bin="$work/fuzz_$target"
newest=$(find "${deps[@]}" "$src/src/herd/io" \
  "$src/src/herd/model/vision_preprocess.cc" "$src/src/herd/model/vision_preprocess.h" \
  "$src/src/herd/tokenizer" "$src/src/herd/base" "$src/tests/fuzz" \
  -newer "$bin" -name '*.[ch]*' 2>/dev/null | head -1 || true)
if [ ! -x "$bin" ] || [ -n "$newest" ]; then bash "$src/tests/fuzz/build.sh" "$src" "$bin" "$target"; fi
cp -n "$src/tests/fuzz/$seeds"/* "$work/corpus/"
rc=0
"$bin" -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$work/" \
  "$work/corpus" >"$work/fuzz.log" 2>&1 || rc=$?
grep -E "^(Done|stat::number_of_executed_units|INFO: seed corpus)|ERROR|SUMMARY" "$work/fuzz.log" || true
echo "corpus: $(ls "$work/corpus" | wc -l) inputs"
exit $rc
