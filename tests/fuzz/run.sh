#!/usr/bin/env bash
# Builds (when sources changed) and runs a fuzz target for SECONDS on a copy of its seed corpus
# (tests/fuzz/corpus for request, tests/fuzz/corpus_TARGET for the others); fails on any finding.
# usage: run.sh SOURCE_DIR WORK_DIR SECONDS [TARGET [BIN_DIR]]   (targets: see build.sh)
#   BIN_DIR: where build.sh keeps the targets and their shared objects (default WORK_DIR).
set -euo pipefail
src=$1 work=$2 secs=$3 target=${4:-request} bindir=${5:-$2}
case $target in
  request) seeds=corpus max_len=4096 ;;
  image) seeds=corpus_image max_len=65536 ;;
  gguf | safetensors) seeds=corpus_$target max_len=8192 ;;
  config) seeds=corpus_config max_len=4096 ;;
  tokenizer) seeds=corpus_tokenizer max_len=16384 ;;
  *) echo "unknown fuzz target $target" >&2; exit 2 ;;
esac
mkdir -p "$work/corpus"
bin="$bindir/fuzz_$target"
# A no-op when the objects and the binary are up to date (ctest's fuzz_build built them all).
bash "$src/tests/fuzz/build.sh" "$src" "$bindir" "$target"
cp -n "$src/tests/fuzz/$seeds"/* "$work/corpus/"
rc=0
"$bin" -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$work/" \
  "$work/corpus" >"$work/fuzz.log" 2>&1 || rc=$?
grep -E "^(Done|stat::number_of_executed_units|INFO: seed corpus)|ERROR|SUMMARY" "$work/fuzz.log" || true
echo "corpus: $(ls "$work/corpus" | wc -l) inputs"
exit $rc
