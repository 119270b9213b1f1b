#!/usr/bin/env bash
# Quality of herd's quantized fast paths next to llama.cpp's own quantizations of the same
# weights, on the same tokens (BENCHMARKS.md "Quality"). Every candidate is compared with one
# reference: herd --precision f32 on the BF16 weights (the path the conformance test holds to
# 1e-4 of llama.cpp), by tools/llama-cpp-ref/quality.mjs (top-1 agreement, mean KL, median
# margin: the measures of `herd quality`).
#
#   bench/quality_vs_llama_cpp.sh [POSITIONS=1000] [WORK_DIR=~/.cache/herd/quality-work]
#
# Needs `make build`, the npm references (make deps) and llama-quantize (built once by
# bench/build_llama_cpp.sh, ~8 min). Not part of `make test`. Writes WORK_DIR/quality.jsonl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
work=${2:-$HOME/.cache/herd/quality-work}
herd=$root/build/herd
ref=$root/tools/llama-cpp-ref
bin=$("$root/bench/build_llama_cpp.sh")
mkdir -p "$work"
m=$work/small
[ -f "$m/config.json" ] || "$herd" synth --preset small -o "$m"
vocab=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(c.get('text_config', c)['vocab_size'])" "$m/config.json")
# Uniform random ids over the vocabulary, as `herd quality` draws them (another generator).
python3 -c "import random,sys; r=random.Random(1); print(','.join(str(r.randrange(int(sys.argv[2]))) for _ in range(int(sys.argv[1]))))" \
  "$n" "$vocab" >"$work/tokens.txt"

"$herd" logits -m "$m" --tokens-file "$work/tokens.txt" --all --precision f32 -o "$work/ref.bin"
cands=()
for q in bf16 int8 int4 int4-all; do
  "$herd" logits -m "$m" --tokens-file "$work/tokens.txt" --all --precision auto --quant "$q" \
    -o "$work/herd-$q.bin"
  cands+=("herd-$q=$work/herd-$q.bin")
done
"$herd" export-gguf -m "$m" --dtype bf16 -o "$work/small-bf16.gguf"
"$bin/llama-quantize" "$work/small-bf16.gguf" "$work/small-q8_0.gguf" Q8_0 2 >/dev/null
"$bin/llama-quantize" "$work/small-bf16.gguf" "$work/small-q4_0.gguf" Q4_0 2 >/dev/null
"$bin/llama-quantize" --pure "$work/small-bf16.gguf" "$work/small-q4_0-pure.gguf" Q4_0 2 >/dev/null
# logits.mjs returns each row as a JS Map of the whole vocabulary: 50 positions per call keep
# the node heap small (every call evaluates the whole prefix again).
chunk=50
for g in bf16 q8_0 q4_0 q4_0-pure; do
  : >"$work/llama-$g.bin"
  for ((p = 0; p < n; p += chunk)); do
    pos=$(seq -s, "$p" "$((p + chunk < n ? p + chunk - 1 : n - 1))")
    node --max-old-space-size=6144 "$ref/logits.mjs" "$work/small-$g.gguf" "$work/tokens.txt" \
      "$pos" "$work/part.bin"
    cat "$work/part.bin" >>"$work/llama-$g.bin"
  done
  cands+=("llama.cpp-$g=$work/llama-$g.bin")
done
node "$ref/quality.mjs" "$vocab" "$work/ref.bin" "${cands[@]}" | tee "$work/quality.jsonl"
