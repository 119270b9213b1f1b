#!/usr/bin/env bash
# herd and llama.cpp on the same GGUF files (issue 15's speed item): the bench preset exported
# as BF16 GGUF by herd, requantized by llama-quantize (Q8_0, Q4_K_M mix), then `llama-bench` and
# `herd bench` alternated for ROUNDS rounds on each file; prints medians and herd ÷ llama.cpp.
# usage: bench/gguf_vs_llama_cpp.sh HERD WORK_DIR [THREADS=1] [ROUNDS=3] [TYPES="Q8_0 Q4_K_M"]
set -euo pipefail
herd=$1 work=$2 threads=${3:-1} rounds=${4:-3} types=${5:-"Q8_0 Q4_K_M"}
here=$(cd "$(dirname "$0")" && pwd)
bindir=$(bash "$here/build_llama_cpp.sh")
mkdir -p "$work"
[ -f "$work/bench/config.json" ] || "$herd" synth --preset bench -o "$work/bench" >/dev/null
[ -f "$work/bench-bf16.gguf" ] ||
  "$herd" export-gguf -m "$work/bench" -o "$work/bench-bf16.gguf" --dtype bf16 >/dev/null
for t in $types; do
  [ -f "$work/bench-$t.gguf" ] ||
    "$bindir/llama-quantize" "$work/bench-bf16.gguf" "$work/bench-$t.gguf" "$t" >/dev/null 2>&1
done
echo "| GGUF | herd decode tg32 / llama.cpp (tok/s) | ratio | herd prefill pp256 / llama.cpp | ratio | herd load (s) |"
echo "|---|---|---|---|---|---|"
for t in $types; do
  f="$work/bench-$t.gguf"
  : >"$work/$t.rounds"
  for r in $(seq "$rounds"); do
    l=$("$bindir/llama-bench" -m "$f" -p 256 -n 32 -t "$threads" -r 1 -o json 2>/dev/null)
    h=$("$herd" bench -m "$f" -p 256 -n 32 -t "$threads" -r 1 --json 2>/dev/null | tail -1)
    python3 - "$l" "$h" >>"$work/$t.rounds" <<'PY'
import json, sys
l, h = json.loads(sys.argv[1]), json.loads(sys.argv[2])
lpp = [r["avg_ts"] for r in l if r["n_prompt"] > 0][0]
ltg = [r["avg_ts"] for r in l if r["n_gen"] > 0][0]
print(h["decode_tok_s"], ltg, h["prefill_tok_s"], lpp, h["load_s"])
PY
  done
  python3 - "$t" "$work/$t.rounds" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[2])]
hd, ld, hp, lp, load = (st.median(c) for c in zip(*rows))
dr = [r[0] / r[1] for r in rows]; pr = [r[2] / r[3] for r in rows]
print(f"| {sys.argv[1]} | {hd:.1f} / {ld:.1f} | {st.median(dr):.2f}× ({', '.join(f'{x:.2f}' for x in dr)}) "
      f"| {hp:.1f} / {lp:.1f} | {st.median(pr):.2f}× ({', '.join(f'{x:.2f}' for x in pr)}) | {load:.3f} |")
PY
done
