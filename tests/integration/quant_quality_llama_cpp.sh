#!/bin/bash
# Issue 14, "no worse than llama.cpp at equal bits": on the trained model and the first BYTES of
# its held-out text (30-token windows, as perplexity_llama_cpp.sh explains), the mean KL against
# herd's f32 log-probabilities of
#   herd --quant q8_0 (8.5 bits, herd's least-error Q8_0 blocks)  vs  llama.cpp on llama-quantize's Q8_0
#   herd --quant q4_0 (4.5 bits, herd's least-error Q4_0 blocks)  vs  llama.cpp on `--pure` Q4_0
# herd's must not be larger. The blocks differ only in the quantizer's choice of scales and
# codes (same layout, and herd's activation blocks are ggml's bit for bit), so this is the
# quantizer's quality, measured through the whole network. Deterministic: same weights, text and
# windows give the same figures on every run.
#   quant_quality_llama_cpp.sh HERD MODEL NODE REF_DIR QUANTIZE [BYTES]
set -u
HERD=$1
MODEL=$2
NODE=$3
REF=$4
QUANTIZE=$5
BYTES=${6:-15000}
CTX=30
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$QUANTIZE" ] || fail "llama-quantize not found at $QUANTIZE (bench/build_llama_cpp.sh builds it)"
. "$(dirname "$0")/heldout_tokens.sh"
heldout_tokens "$HERD" "$MODEL" "$BYTES" "$T" || fail "held-out text"
"$HERD" export-gguf -m "$MODEL" -o "$T/f32.gguf" --dtype f32 2> /dev/null || fail "export-gguf"
"$QUANTIZE" "$T/f32.gguf" "$T/q8_0.gguf" Q8_0 > "$T/q.log" 2>&1 || { cat "$T/q.log"; fail "Q8_0"; }
"$QUANTIZE" --pure "$T/f32.gguf" "$T/q4_0.gguf" Q4_0 >> "$T/q.log" 2>&1 ||
  { cat "$T/q.log"; fail "Q4_0"; }
"$HERD" perplexity -m "$MODEL" -f "$T/text.txt" --ctx $CTX --precision f32 -t 2 --json \
  --save-base "$T/base.bin" > /dev/null || fail "herd f32"
for q in q8_0 q4_0; do
  "$HERD" perplexity -m "$MODEL" -f "$T/text.txt" --ctx $CTX --quant $q -t 2 --json \
    --kl-base "$T/base.bin" > "$T/herd-$q.json" 2> /dev/null || fail "herd --quant $q"
  "$NODE" "$REF/perplexity.mjs" "$T/$q.gguf" "$T/tokens.json" $CTX "$BOS" \
    --kl-base "$T/base.bin" > "$T/llama-$q.json" || fail "llama.cpp $q"
done
python3 - "$T" <<'PY' || fail "herd's KL above llama.cpp's"
import json, sys
d = sys.argv[1]
ok = True
for q in ("q8_0", "q4_0"):
    h, l = (json.load(open(f"{d}/{w}-{q}.json")) for w in ("herd", "llama"))
    assert h["tokens"] == l["tokens"] > 0, (h, l)
    print(f"{q}: mean KL herd {h['kl']:.4e} llama.cpp {l['kl']:.4e} (ratio {h['kl'] / l['kl']:.3f}); "
          f"top-1 herd {h['top1']:.4f} llama.cpp {l['top1']:.4f}")
    ok = ok and h["kl"] <= l["kl"]
sys.exit(0 if ok else 1)
PY
