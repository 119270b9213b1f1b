#!/bin/bash
# `herd perplexity` on the trained model (models/default) and the first 8 KB of its held-out
# text: the f32 run saves a base; the same run against it has KL 0 and top-1 100%; the int8 fast
# path against it has a small KL; a trained byte model's perplexity is far below the vocabulary
# size; bad inputs end in one "herd: error:" line.
set -u
HERD=$1
MODEL=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
head -c 8192 "$MODEL/heldout.txt" > "$T/text.txt"

"$HERD" perplexity -m "$MODEL" -f "$T/text.txt" --ctx 128 --precision f32 -t 2 --json \
  --save-base "$T/base.bin" > "$T/f32.json" || fail "f32 run"
"$HERD" perplexity -m "$MODEL" -f "$T/text.txt" --ctx 128 --precision f32 -t 2 --json \
  --kl-base "$T/base.bin" > "$T/self.json" || fail "f32 vs its own base"
"$HERD" perplexity -m "$MODEL" -f "$T/text.txt" --ctx 128 --quant int8 -t 2 --json \
  --kl-base "$T/base.bin" > "$T/int8.json" || fail "int8 vs base"
cat "$T"/f32.json "$T"/self.json "$T"/int8.json
python3 - "$T" <<'PY' || fail "figures"
import json, sys
d = sys.argv[1]
f32, me, q8 = (json.load(open(f"{d}/{n}.json")) for n in ("f32", "self", "int8"))
# 8193 tokens (BOS + 8192 bytes) -> 64 windows of 128, 63 scored each.
assert f32["tokens"] == 64 * 63 and f32["windows"] == 64, f32
assert 1.0 < f32["ppl"] < 8.0 and f32["ppl_err"] > 0, f32
assert me["ppl"] == f32["ppl"] and me["kl"] == 0 and me["top1"] == 1.0, me
assert 0 < q8["kl"] < 0.02 and q8["top1"] > 0.95 and abs(q8["ppl"] / f32["ppl"] - 1) < 0.02, q8
PY

expect_error() {
  local out
  out=$("$HERD" "$@" 2>&1 >/dev/null) && fail "expected an error: $*"
  echo "$out" | grep -q "^herd: error:" || fail "no 'herd: error:' line for $*: $out"
}
head -c 100 "$T/text.txt" > "$T/short.txt"
expect_error perplexity -m "$MODEL" -f "$T/short.txt" --ctx 128
expect_error perplexity -m "$MODEL" -f "$T/text.txt" --ctx 64 --kl-base "$T/base.bin"
expect_error perplexity -m "$MODEL" -f "$T/text.txt" --kl-base "$T/text.txt"
expect_error perplexity -m "$MODEL" -f "$T/text.txt" --kl-base "$T/base.bin" --save-base "$T/x"
echo "perplexity_cli: ok"
