#!/bin/bash
# The quality table of issue 14 for herd on the trained model: perplexity of the held-out text in
# windows of CTX tokens with f32 logits as the base, then bf16 / int8 / int4 / int4-all on the
# fast path against it (mean KL, top-1 agreement, Δp). One JSON line per row.
#   tools/train/quality.sh [HERD] [MODEL] [CTX] [TEXT]
set -eu
HERD=${1:-build/herd}
MODEL=${2:-models/default}
CTX=${3:-256}
TEXT=${4:-$MODEL/heldout.txt}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "{\"row\": \"f32\", $("$HERD" perplexity -m "$MODEL" -f "$TEXT" --ctx "$CTX" --precision f32 \
  --json --save-base "$T/base.bin" | cut -c2-)"
for q in bf16 int8 int4 int4-all; do
  echo "{\"row\": \"$q\", $("$HERD" perplexity -m "$MODEL" -f "$TEXT" --ctx "$CTX" --quant "$q" \
    --json --kl-base "$T/base.bin" 2>/dev/null | cut -c2-)"
done
