#!/usr/bin/env bash
# Tokenizer conformance (CTest tokenizer_conformance_tiktoken):
#  1. generate the corpus (make_corpus.mjs, deterministic);
#  2. js-tiktoken over Meta's tokenizer.model vs `herd tokenize --jsonl`, with and without
#     --special, and `herd detokenize --jsonl` must give every string back;
#  3. herd writes a tokenizer.json from the ranks (TikTokenConverter's layout); herd loading it
#     and @huggingface/tokenizers loading it must both encode exactly as js-tiktoken.
# Missing node or references is a failure, not a skip.
set -euo pipefail
HERD=$1 TOOL=$2 LLAMA4=$3 SRC=$4 WORK=$5
HERE=$(cd "$(dirname "$0")" && pwd)
REF="$SRC/tools/tokenizer-ref"
command -v node >/dev/null || { echo "FAIL: node is not installed (make deps)"; exit 1; }
for pkg in js-tiktoken @huggingface/tokenizers; do
  [ -d "$REF/node_modules/$pkg" ] || {
    echo "FAIL: $pkg is not installed in tools/tokenizer-ref (run tools/install-references.sh)"; exit 1; }
done
mkdir -p "$WORK/hf"
cd "$WORK"
node "$HERE/make_corpus.mjs" corpus.jsonl
M=(--model "$LLAMA4/tokenizer.model" --specials "$LLAMA4/special_tokens.tsv")

node "$REF/encode.mjs" "${M[@]}" --in corpus.jsonl --out ref.jsonl --time
"$HERD" tokenize -m "$LLAMA4" --jsonl < corpus.jsonl > herd.jsonl
"$HERD" detokenize -m "$LLAMA4" --jsonl < herd.jsonl > decoded.jsonl
node "$HERE/compare.mjs" "js-tiktoken" corpus.jsonl ref.jsonl herd.jsonl decoded.jsonl

node "$REF/encode.mjs" "${M[@]}" --in corpus.jsonl --out ref-special.jsonl --special
"$HERD" tokenize -m "$LLAMA4" --jsonl --special < corpus.jsonl > herd-special.jsonl
"$HERD" detokenize -m "$LLAMA4" --jsonl < herd-special.jsonl > decoded-special.jsonl
node "$HERE/compare.mjs" "js-tiktoken --special" corpus.jsonl ref-special.jsonl herd-special.jsonl \
  decoded-special.jsonl

"$TOOL" export-hf-json "$LLAMA4" hf/tokenizer.json
"$HERD" tokenize -m hf --jsonl --special < corpus.jsonl > herd-hf.jsonl
node "$HERE/compare.mjs" "herd tokenizer.json" corpus.jsonl ref-special.jsonl herd-hf.jsonl
node "$REF/hf_encode.mjs" --json hf/tokenizer.json --in corpus.jsonl --out hf-js.jsonl --time
node "$HERE/compare.mjs" "@huggingface/tokenizers" corpus.jsonl ref-special.jsonl hf-js.jsonl
echo "tokenizer conformance: all passed"
