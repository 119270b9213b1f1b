#!/bin/bash
# Issue 14's quality table with llama.cpp's rows: the trained model (models/default) on its
# held-out text in windows of 30 tokens, every row against herd's f32 log-probabilities:
# herd bf16 / int8 / int4 / int4-all / q8_0 / q4_0, and llama.cpp (node-llama-cpp prebuilt) on BF16, Q8_0,
# pure Q4_0 and Q4_K_M GGUFs made by the pinned llama.cpp's llama-quantize from herd's F32 export.
# 30 tokens because below 32 positions the model's chunk (64) and floor_scale (32), which llama.cpp
# replaces by 8192, change nothing (tests/integration/perplexity_llama_cpp.sh). One JSON line per
# row.   bench/quality_trained_vs_llama_cpp.sh [HERD] [MODEL] [BYTES]
set -euo pipefail
HERD=${1:-build/herd}
MODEL=${2:-models/default}
BYTES=${3:-0}
CTX=30
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=$("$here/bench/build_llama_cpp.sh")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$here/tests/integration/heldout_tokens.sh"
heldout_tokens "$HERD" "$MODEL" "$BYTES" "$T"

"$HERD" export-gguf -m "$MODEL" -o "$T/f32.gguf" --dtype f32 2>/dev/null
"$HERD" export-gguf -m "$MODEL" -o "$T/bf16.gguf" --dtype bf16 2>/dev/null
"$BIN/llama-quantize" "$T/f32.gguf" "$T/q8_0.gguf" Q8_0 > "$T/q.log" 2>&1
"$BIN/llama-quantize" --pure "$T/f32.gguf" "$T/q4_0.gguf" Q4_0 >> "$T/q.log" 2>&1
"$BIN/llama-quantize" "$T/f32.gguf" "$T/q4_k_m.gguf" Q4_K_M >> "$T/q.log" 2>&1

echo "{\"row\": \"herd f32\", $("$HERD" perplexity -m "$MODEL" -f "$T/text.txt" --ctx $CTX \
  --precision f32 --json --save-base "$T/base.bin" | cut -c2-)"
for q in bf16 int8 int4 int4-all q8_0 q4_0; do
  echo "{\"row\": \"herd $q\", $("$HERD" perplexity -m "$MODEL" -f "$T/text.txt" --ctx $CTX \
    --quant "$q" --json --kl-base "$T/base.bin" 2>/dev/null | cut -c2-)"
done
# herd on llama-quantize's own Q8_0 / Q4_0 files: the same kernels as --quant q8_0 / q4_0, only
# the quantizer differs.
for g in q8_0 q4_0; do
  echo "{\"row\": \"herd on llama.cpp's $g file\", $("$HERD" perplexity -m "$T/$g.gguf" \
    -f "$T/text.txt" --ctx $CTX --json --kl-base "$T/base.bin" 2>/dev/null | cut -c2-)"
done
for g in f32 bf16 q8_0 q4_0 q4_k_m; do
  echo "{\"row\": \"llama.cpp $g\", $(node "$here/tools/llama-cpp-ref/perplexity.mjs" "$T/$g.gguf" \
    "$T/tokens.json" $CTX "$BOS" --kl-base "$T/base.bin" | cut -c2-)"
done
