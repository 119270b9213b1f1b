#!/usr/bin/env bash
# Builds (when sources changed) and runs a fuzz target for SECONDS on a copy of its seed corpus
# (tests/fuzz/corpus for request, tests/fuzz/corpus_TARGET for the others); fails on any finding.
# usage: run.sh SOURCE_DIR WORK_DIR SECONDS [TARGET]   (targets: see build.sh)
set -euo pipefail
src=$1 work=$2 secs=$3 target=${4:-request}
case $target in
  request) seeds=corpus max_len=4096 ;;
  image) seeds=corpus_image max_len=65536 ;;
  gguf | safetensors) seeds=corpus_$target max_len=8192 ;;
  config) seeds=corpus_config max_len=4096 ;;
  tokenizer) seeds=corpus_tokenizer max_len=16384 ;;
  *) echo "unknown fuzz target $target" >&2; exit 2 ;;
esac
mkdir -p "$work/corpus"
bin="$work/fuzz_$target"
# Any newer source may be one the target compiles (build.sh holds the lists): rebuild then.
newest=$(find "$src/src/herd" "$src/tests/fuzz" -newer "$bin" -name '*.[ch]*' 2>/dev/null |
  head -1 || true)
if [ ! -x "$bin" ] || [ -n "$newest" ]; then bash "$src/tests/fuzz/build.sh" "$src" "$bin" "$target"; fi
cp -n "$src/tests/fuzz/$seeds"/* "$work/corpus/"
rc=0
"$bin" -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$work/" \
  "$work/corpus" >"$work/fuzz.log" 2>&1 || rc=$?
grep -E "^(Done|stat::number_of_executed_units|INFO: seed corpus)|ERROR|SUMMARY" "$work/fuzz.log" || true
echo "corpus: $(ls "$work/corpus" | wc -l) inputs"
exit $rc
