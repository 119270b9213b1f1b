#!/bin/bash
# Issue 15: herd reading a GGUF against llama.cpp reading the same file, on the trained model
# (models/default) and its held-out text. The random-weight comparison
# (tools/llama-cpp-ref/conformance_gguf.mjs) bounds |Δlogit| but cannot show the issue's top-1
# agreement of 99.5%: its 4096 random logits hold near ties that a one-code difference in an
# activation block flips. A trained model's predictions have real margins, so here top-1 is held
# to 99.5% and the distributions to a small mean KL.
#
# The GGUF is herd's F32 export (bf16: herd's BF16 export) requantized by llama.cpp's own
# llama-quantize; herd runs it on its GGUF kernels (--precision auto) with an f32 KV cache, as
# the node-llama-cpp side does (ref_model.mjs). Windows of 30 tokens, positions 15..28 of each
# scored (perplexity_llama_cpp.sh says why 30: below 32 positions the model's chunk 64 and
# floor_scale 32, which the pinned llama.cpp replaces by 8192, change nothing).
#
# Measured (15,000 bytes: 500 windows, 7,000 positions; 2026-12-05, AMD EPYC, AVX-512 VNNI);
# |Δ log p| is the largest over the vocabulary at a position, then max / p99 / p90 over positions:
#   type    mean KL   top-1    max    p99     p90
#   bf16    4.2e-6    99.96%   0.34   0.012   0.007
#   q8_0    4.6e-6    99.93%   0.23   0.043   0.024
#   q4_0    7.8e-6    99.80%   1.67   0.049   0.029
#   q4_k_m  6.4e-6    99.87%   0.10   0.055   0.030   (Q4_K, Q6_K, Q8_0 and, for the 384-wide
#                                                    rows that are no multiple of 256, Q5_0)
#   q5_k_m  8.8e-6    99.83%   0.45   0.056   0.032   (Q5_K, Q6_K, Q8_0 and Q5_1)
#   q6_k    6.9e-6    99.90%   0.13   0.056   0.031
#   q3_k_m  7.0e-6    99.90%   0.19   0.057   0.031   (Q3_K, Q4_K, Q5_K, Q6_K, Q5_0)
#   q2_k    8.8e-6    99.79%   1.25   0.059   0.032   (Q2_K, Q3_K, Q6_K, Q4_0)
#   iq4_xs  1.3e-5    99.81%   1.29   0.055   0.030   (IQ4_XS, IQ4_NL, Q5_K, Q6_K)
#   iq4_nl  5.0e-6    99.89%   0.17   0.047   0.027   (IQ4_NL, Q5_K, Q6_K)
# Why they are not 0: both engines quantize each activation block to ggml's codes (bit for bit,
# gguf_ggml_conformance) and take exact integer dots, but their f32 parts (norms, attention,
# SiLU) round in different orders; where an activation lies within that rounding of a code
# boundary one code moves by 1 and the following positions of the window carry it (0.01-0.1 in
# a log-probability). Where the top-1 router score of a token is such a near tie the engines
# pick different experts, which moves that position by O(1) (the 1.67 of q4_0, one position).
# Held: top-1 >= 99.5% (the issue's), mean KL <= 5e-5 (>= 5x the measured; llama.cpp's own Q8_0
# against the f32 model is 5e-5, BENCHMARKS.md "Quality"), p90 <= 0.1 and p99 <= 0.2 (the code
# flips), max <= 4 (bounds an expert flip).
#   conformance_gguf_trained.sh HERD MODEL NODE REF_DIR LLAMA_QUANTIZE TYPE [BYTES]
set -u
HERD=$1
MODEL=$2
NODE=$3
REF=$4
QUANTIZE=$5
TYPE=$6
BYTES=${7:-15000}
CTX=30
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
declare -A QUANT=([q8_0]=Q8_0 [q4_0]=Q4_0 [q4_k_m]=Q4_K_M [q5_k_m]=Q5_K_M [q6_k]=Q6_K [q3_k_m]=Q3_K_M
                 [q2_k]=Q2_K [iq4_xs]=IQ4_XS [iq4_nl]=IQ4_NL)
[ "$TYPE" = bf16 ] || [ -n "${QUANT[$TYPE]:-}" ] || fail "unknown type $TYPE"
. "$(dirname "$0")/heldout_tokens.sh"
heldout_tokens "$HERD" "$MODEL" "$BYTES" "$T" || fail "held-out text"

if [ "$TYPE" = bf16 ]; then
  "$HERD" export-gguf -m "$MODEL" -o "$T/model.gguf" --dtype bf16 2> "$T/export.log" ||
    { cat "$T/export.log"; fail "export-gguf"; }
else
  [ -x "$QUANTIZE" ] || fail "llama-quantize not found at $QUANTIZE (bench/build_llama_cpp.sh builds it)"
  "$HERD" export-gguf -m "$MODEL" -o "$T/f32.gguf" --dtype f32 2> "$T/export.log" ||
    { cat "$T/export.log"; fail "export-gguf"; }
  "$QUANTIZE" "$T/f32.gguf" "$T/model.gguf" "${QUANT[$TYPE]}" 2 > "$T/quantize.log" 2>&1 ||
    { tail -20 "$T/quantize.log"; fail "llama-quantize ${QUANT[$TYPE]}"; }
fi
"$HERD" info -m "$T/model.gguf" | grep '^gguf:' || fail "herd info"

"$HERD" perplexity -m "$T/model.gguf" -f "$T/text.txt" --ctx $CTX --precision auto \
  --kv-type f32 -t 2 --json --save-base "$T/base.bin" > "$T/herd.json" || fail "herd perplexity"
"$NODE" "$REF/perplexity.mjs" "$T/model.gguf" "$T/tokens.json" $CTX "$BOS" \
  --kl-base "$T/base.bin" > "$T/llama.json" || fail "llama.cpp perplexity"
echo "herd:      $(cat "$T/herd.json")"
echo "llama.cpp: $(cat "$T/llama.json")"
python3 - "$T" "$BYTES" "$TYPE" <<'PY' || fail "criteria"
import json, sys
d, nbytes, typ = sys.argv[1], int(sys.argv[2]), sys.argv[3]
h, l = (json.load(open(f"{d}/{n}.json")) for n in ("herd", "llama"))
windows = (nbytes + 1) // 30  # BOS + one token per byte (the byte-level tokenizer)
assert h["windows"] == l["windows"] == windows and h["tokens"] == l["tokens"] == windows * 14, (h, l)
print(f"{typ}: {l['tokens']} positions, top-1 {100 * l['top1']:.2f}% (>= 99.5%), "
      f"mean KL {l['kl']:.2e} (<= 5e-5), |dlogp| max {l['max_dlp']:.3f} (<= 4), "
      f"p99 {l['p99_dlp']:.4f} (<= 0.2), p90 {l['p90_dlp']:.4f} (<= 0.1), "
      f"perplexity herd {h['ppl']:.5f} llama.cpp {l['ppl']:.5f}")
bad = []
if not l["top1"] >= 0.995: bad.append("top-1")
if not l["kl"] <= 5e-5: bad.append("mean KL")
if not l["max_dlp"] <= 4.0: bad.append("max |dlogp|")
if not l["p99_dlp"] <= 0.2: bad.append("p99 |dlogp|")
if not l["p90_dlp"] <= 0.1: bad.append("p90 |dlogp|")
if not abs(h["ppl"] / l["ppl"] - 1) < 1e-3: bad.append("perplexity")
assert not bad, "failed: " + ", ".join(bad)
PY
echo "ok"
