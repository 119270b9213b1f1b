#!/usr/bin/env bash
# Long-context runs (issue "Long context"): herd at a depth of D context tokens on a synthetic
# preset, peak RSS (/usr/bin/time -v) against `herd plan --ram` (the planner's prediction at the
# same context), and llama.cpp's llama-bench on the same checkpoint exported to GGUF.
#
#   bench/long_context.sh herd PRESET DEPTH...    e.g. herd small 8192 32768 131072 262144
#   bench/long_context.sh llama PRESET DEPTH...   llama-bench -p 512 -n 32 -d DEPTH (bf16 GGUF)
#
# Each herd run: `herd bench -d D -p 512 -n 32 -r 1 --ubatch 512 --kv-type bf16` — the D-token
# context prefilled once in 512-token slices (its speed is the long-prefill figure), then pp512
# and tg32 on top of it (prefix cache), as llama-bench's pp512@dD / tg32@dD. One JSON line per
# run is appended to $WORK/results.jsonl. Models are synthesized text-only with
# max_position_embeddings raised to Scout-Instruct's 10485760 (the presets say 262144).
# Environment: HERD (build/herd), WORK (/tmp/herd-long), THREADS (2), LLAMA_BIN (llama-bench dir).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
HERD=${HERD:-$root/build/herd}
WORK=${WORK:-/tmp/herd-long}
T=${THREADS:-2}
mkdir -p "$WORK"

model() {
  local p=$1 d=$WORK/$1
  if [ ! -f "$d/config.json" ]; then
    "$HERD" synth --preset "$p" --text-only -o "$d" >/dev/null
    python3 - "$d/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["max_position_embeddings"] = 10485760
json.dump(c, open(sys.argv[1], "w"), indent=2)
EOF
  fi
  echo "$d"
}

run_herd() {
  local p=$1 D=$2 m ctx
  m=$(model "$p")
  ctx=$((D + 512 + 64))  # depth, the pp512 prompt's pages, the tg32 request's pages
  local base=$WORK/herd-$p-$D
  echo "herd $p depth $D: started $(date -u +%H:%M:%S)" >&2
  local rc=0
  /usr/bin/time -v "$HERD" bench -m "$m" -t "$T" --quant bf16 --kv-type bf16 -d "$D" -p 512 \
    -n 32 -r 1 --ubatch 512 --ctx "$ctx" --json >"$base.json" 2>"$base.time" || rc=$?
  "$HERD" plan -m "$m" --quant bf16 --kv-type bf16 --ram 24G --ctx "$ctx" --json >"$base.plan.json"
  python3 - "$p" "$D" "$rc" "$base" <<'EOF' | tee -a "$WORK/results.jsonl"
import json, re, sys
p, D, rc, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = open(base + ".time").read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", t).group(1)
plan = json.load(open(base + ".plan.json"))
r = {"engine": "herd", "preset": p, "depth": D, "rc": rc, "peak_rss_bytes": rss, "wall": wall,
     "predicted_bytes": plan["predicted_bytes"], "rss_over_predicted": rss / plan["predicted_bytes"]}
if rc == 0:
    b = json.loads(open(base + ".json").read())
    r.update({k: b[k] for k in ("depth_prefill_tok_s", "prefill_tok_s", "decode_tok_s", "threads",
                               "kv_type")})
print(json.dumps(r))
EOF
}

run_llama() {
  local p=$1 D=$2 m bin gguf
  m=$(model "$p")
  bin=${LLAMA_BIN:-$("$root/bench/build_llama_cpp.sh")}
  gguf=$WORK/$p-bf16.gguf
  [ -f "$gguf" ] || "$HERD" export-gguf -m "$m" -o "$gguf" --dtype bf16 >/dev/null
  local base=$WORK/llama-$p-$D rc=0
  echo "llama.cpp $p depth $D: started $(date -u +%H:%M:%S)" >&2
  /usr/bin/time -v "$bin/llama-bench" -m "$gguf" -t "$T" -p 512 -n 32 -d "$D" -r 1 -o json \
    >"$base.json" 2>"$base.time" || rc=$?
  python3 - "$p" "$D" "$rc" "$base" <<'EOF' | tee -a "$WORK/results.jsonl"
import json, re, sys
p, D, rc, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = open(base + ".time").read()
m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
r = {"engine": "llama.cpp", "preset": p, "depth": D, "rc": rc,
     "peak_rss_bytes": int(m.group(1)) * 1024 if m else None}
try:
    for row in json.load(open(base + ".json")):
        key = "prefill_tok_s" if row["n_prompt"] > 0 else "decode_tok_s"
        r[key] = row["avg_ts"]
except Exception as e:  # out of memory or killed: say so
    r["error"] = (t.strip().splitlines() or [str(e)])[-1]
print(json.dumps(r))
EOF
}

what=${1:?herd or llama}
preset=${2:?preset}
shift 2
for D in "$@"; do
  case $what in
    herd) run_herd "$preset" "$D" ;;
    llama) run_llama "$preset" "$D" ;;
    *) echo "unknown: $what" >&2; exit 2 ;;
  esac
done
