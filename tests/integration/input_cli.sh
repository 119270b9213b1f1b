#!/usr/bin/env bash
# Bad input never crashes, hangs or silently computes garbage (issue 17). Every check drives the
# real binary and requires: exit code 1 (not 0, not a signal, not a timeout), exactly one line on
# stderr, "herd: error: ..." naming the flag / field / file at fault, no sanitizer report.
# usage: input_cli.sh HERD CASE   (CASE: flags, config, corpus, special_files)
set -u
HERD=$1
CASE=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/herd-input-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILS=0
CHECKS=0

fail() { echo "FAIL ($CASE): $*" >&2; FAILS=$((FAILS + 1)); }

# expect_error NEEDLE ARGS...: herd ARGS must fail cleanly with one error line containing NEEDLE
# (a fixed string). stdin is /dev/null, and `timeout` turns a hang into a failure.
expect_error() {
  local needle=$1; shift
  CHECKS=$((CHECKS + 1))
  timeout 60 "$HERD" "$@" </dev/null >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  local what="herd $*"
  if [ "$rc" -eq 124 ]; then fail "timed out (hang?): $what"; return; fi
  if [ "$rc" -ne 1 ]; then fail "exit $rc, expected 1: $what"; cat "$WORK/err" >&2; return; fi
  if grep -qE "Sanitizer|runtime error" "$WORK/err"; then fail "sanitizer report: $what"; return; fi
  local lines
  lines=$(wc -l <"$WORK/err")
  if [ "$lines" -ne 1 ]; then
    fail "$lines lines on stderr, expected 1: $what"; cat "$WORK/err" >&2; return
  fi
  if ! grep -q "^herd: error: " "$WORK/err"; then fail "no 'herd: error:' line: $what"; return; fi
  if ! grep -qF -- "$needle" "$WORK/err"; then
    fail "error does not contain '$needle': $what"; cat "$WORK/err" >&2; return
  fi
  # Out-of-range messages stay readable (no 308-digit doubles).
  if [ "$(wc -c <"$WORK/err")" -gt 400 ]; then fail "message over 400 bytes: $what"; fi
}

# The last error message (after expect_error) for extra checks.
last_error() { cat "$WORK/err"; }

synth() {  # DIR [args]
  local d=$1; shift
  "$HERD" synth --preset tiny -o "$d" "$@" >/dev/null 2>"$WORK/synth.err" ||
    { cat "$WORK/synth.err" >&2; echo "FAIL: herd synth" >&2; exit 1; }
}

# set_json FILE POINTER RAW: replaces the value at a JSON pointer (/a/b) with raw JSON text, so
# huge integers and odd numbers reach herd exactly as written.
set_json() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
path, pointer, raw = sys.argv[1:]
j = json.load(open(path))
keys = pointer.strip("/").split("/")
o = j
for k in keys[:-1]:
    o = o[k]
o[keys[-1]] = "@@VALUE@@"
open(path, "w").write(json.dumps(j).replace('"@@VALUE@@"', raw))
EOF
}

# A config-only copy of M with one value replaced.
config_dir() {  # NAME POINTER RAW
  local d="$WORK/cfg-$1"
  rm -rf "$d"; mkdir -p "$d"
  cp "$WORK/m/config.json" "$d/config.json"
  set_json "$d/config.json" "$2" "$3"
  echo "$d"
}

case "$CASE" in
  flags)
    # Every numeric and enumerated flag of every subcommand, with each kind of bad value.
    synth "$WORK/m"
    M="$WORK/m"
    # command | flag | out-of-range value | kind (int, real, enum, list) | other arguments
    table=(
      "run|--n-predict|0|int|-m $M -p hi"
      "run|--threads|1025|int|-m $M -p hi"
      "run|--ctx|0|int|-m $M -p hi"
      "run|--temp|-0.5|real|-m $M -p hi"
      "run|--top-k|2147483648|int|-m $M -p hi"
      "run|--top-p|1.5|real|-m $M -p hi"
      "run|--min-p|1.01|real|-m $M -p hi"
      "run|--repeat-penalty|0|real|-m $M -p hi"
      "run|--seed|18446744073709551616|int|-m $M -p hi"
      "run|--precision|f16|enum|-m $M -p hi"
      "run|--quant|int2|enum|-m $M -p hi"
      "run|--kv-type|f16|enum|-m $M -p hi"
      "run|--kv-size|0|real|-m $M -p hi"
      "run|--parallel|0|int|-m $M -p hi"
      "run|--ubatch|0|int|-m $M -p hi"
      "chat|--kv-type|int4|enum|-m $M"
      "bench|--parallel|4097|int|-m $M -p 1 -n 1 -r 1"
      "bench|--kv-type|q8|enum|-m $M -p 1 -n 1 -r 1"
      "chat|--n-predict|0|int|-m $M"
      "chat|--threads|0|int|-m $M"
      "chat|--ctx|0|int|-m $M"
      "chat|--temp|-1|real|-m $M"
      "chat|--top-k|-1|int|-m $M"
      "chat|--top-p|0|real|-m $M"
      "chat|--min-p|-0.1|real|-m $M"
      "chat|--repeat-penalty|-1|real|-m $M"
      "chat|--seed|-1|int|-m $M"
      "chat|--precision|fast|enum|-m $M"
      "chat|--quant|q8|enum|-m $M"
      "logits|--ubatch|0|int|-m $M --tokens 1,2 -o $WORK/o"
      "logits|--greedy|-1|int|-m $M --tokens 1,2 -o $WORK/o"
      "logits|--threads|1025|int|-m $M --tokens 1,2 -o $WORK/o"
      "logits|--tokens|1,,2|list|-m $M -o $WORK/o"
      "logits|--positions|1,|list|-m $M --tokens 1,2 -o $WORK/o"
      "logits|--precision|f64|enum|-m $M --tokens 1,2 -o $WORK/o"
      "logits|--quant|int3|enum|-m $M --tokens 1,2 -o $WORK/o --precision auto"
      "bench|--prompt-tokens|-1|int|-m $M -n 1 -r 1"
      "bench|--gen-tokens|-1|int|-m $M -p 1 -r 1"
      "bench|--repeats|0|int|-m $M -p 1 -n 1"
      "bench|--threads|0|int|-m $M -p 1 -n 1 -r 1"
      "bench|--precision|bf16|enum|-m $M -p 1 -n 1 -r 1"
      "bench|--quant|fp4|enum|-m $M -p 1 -n 1 -r 1"
      "quality|--positions|0|int|-m $M"
      "quality|--threads|1025|int|-m $M -n 2"
      "quality|--seed|-5|int|-m $M -n 2"
      "quality|--quant|int5|enum|-m $M -n 2"
      "perplexity|--ctx|0|int|-m $M -f $WORK/m/config.json"
      "perplexity|--threads|1025|int|-m $M -f $WORK/m/config.json"
      "perplexity|--quant|int5|enum|-m $M -f $WORK/m/config.json"
      "perplexity|--precision|f16|enum|-m $M -f $WORK/m/config.json"
      "quantize|--threads|0|int|-m $M -o $WORK/q"
      "quantize|--shards|0|int|-m $M -o $WORK/q"
      "quantize|--to|int5|enum|-m $M -o $WORK/q"
      "synth|--seed|-1|int|-o $WORK/s"
      "synth|--shards|0|int|-o $WORK/s"
      "synth|--attention-chunk-size|-1|int|-o $WORK/s"
      "synth|--floor-scale|0|real|-o $WORK/s"
      "synth|--layers|0|int|-o $WORK/s"
      "synth|--hidden|0|int|-o $WORK/s"
      "synth|--experts|0|int|-o $WORK/s"
      "synth|--vocab|0|int|-o $WORK/s"
      "synth|--preset|huge|enum|-o $WORK/s"
      "verify|--threads|1025|int|-m $M"
      "export-gguf|--dtype|f8|enum|-m $M -o $WORK/g.gguf"
      "bench|--depth|-1|int|-m $M -p 1 -n 1 -r 1"
      "plan|--count|0|int|-m scout --quant bf16 --gpu h100"
      "plan|--ram|0|real|-m scout --quant bf16"
      "plan|--ctx|0|int|-m $M --quant bf16 --ram 1G"
      "plan|--ubatch|0|int|-m $M --quant bf16 --ram 1G"
      "plan|--parallel|0|int|-m $M --quant bf16 --ram 1G"
      "plan|--quant|int3|enum|-m scout --gpu h100 --count 1"
      "plan|--kv-type|q8|enum|-m scout --quant bf16 --gpu h100"
      "plan|--gpu|a100|enum|-m scout --quant bf16 --count 2"
    )
    for row in "${table[@]}"; do
      IFS='|' read -r cmd flag oor kind rest <<<"$row"
      # shellcheck disable=SC2206
      args=($rest)
      case "$kind" in
        int) values=("$oor" nan inf -7 100000000000000000000000 "" abc 1.5) ;;
        real) values=("$oor" nan inf -inf -7 1e999 "" abc) ;;
        enum) values=("$oor" nan inf -1 99999999999999999999 "" 7) ;;
        list) values=("$oor" "" ",1" "1 ,, 2" abc "1,x" 99999999999999999999) ;;
      esac
      for v in "${values[@]}"; do
        # The one-line error must name the flag.
        expect_error "$flag" "$cmd" "${args[@]}" "$flag" "$v"
      done
    done
    ;;

  config)
    # Every numeric config.json field refuses bad values, naming config.json and the field
    # (config-only directories: `herd info` reads just config.json).
    synth "$WORK/m"
    T=/text_config
    V=/vision_config
    rows=(
      "$T/hidden_size|0" "$T/hidden_size|-1" "$T/hidden_size|1e30" "$T/hidden_size|\"64\""
      "$T/num_hidden_layers|0" "$T/num_hidden_layers|100000"
      "$T/num_attention_heads|0" "$T/num_key_value_heads|0" "$T/num_key_value_heads|1000"
      "$T/head_dim|0" "$T/head_dim|-16" "$T/vocab_size|0" "$T/vocab_size|99999999999"
      "$T/num_local_experts|-1" "$T/intermediate_size|0" "$T/intermediate_size_mlp|-1"
      "$T/interleave_moe_layer_step|0" "$T/attention_chunk_size|-1"
      "$T/attention_chunk_size|18446744073709551615" "$T/max_position_embeddings|0"
      "$T/rope_theta|0" "$T/rope_theta|-1" "$T/rms_norm_eps|-1" "$T/rms_norm_eps|0"
      "$T/floor_scale|0" "$T/attn_scale|-1" "$T/bos_token_id|999999" "$T/eos_token_id|[1,-1]"
      "$T/pad_token_id|999999" "/image_token_index|999999"
      "$T/rope_scaling/factor|0" "$T/rope_scaling/low_freq_factor|-1"
      "$T/rope_scaling/high_freq_factor|0.5" "$T/rope_scaling/original_max_position_embeddings|0"
      "$V/hidden_size|0" "$V/num_hidden_layers|-1" "$V/num_attention_heads|0"
      "$V/intermediate_size|0" "$V/image_size|0" "$V/patch_size|0" "$V/patch_size|100000"
      "$V/num_channels|0" "$V/pixel_shuffle_ratio|0" "$V/pixel_shuffle_ratio|3"
      "$V/projector_input_dim|0" "$V/projector_output_dim|-4" "$V/vision_output_dim|0"
      "$V/rope_theta|-1" "$V/norm_eps|0"
    )
    i=0
    for row in "${rows[@]}"; do
      IFS='|' read -r ptr raw <<<"$row"
      d=$(config_dir "$i" "$ptr" "$raw")
      i=$((i + 1))
      field=${ptr##*/}
      expect_error "$field" info -m "$d"
      grep -qF "config.json" "$WORK/err" || fail "does not name config.json: $ptr = $raw"
      # The value as written (not a re-rendered double) for integers and simple numbers.
      case "$raw" in
        \"*|\[*|1e30) ;;
        *) grep -qF -- "$raw" "$WORK/err" || fail "does not show the value $raw: $ptr" ;;
      esac
    done
    ;;

  corpus)
    # Every reproducer of issue 17, in its order.
    synth "$WORK/m"
    synth "$WORK/m1" --shards 1
    M="$WORK/m"
    # Crashes
    expect_error "--threads: got 100000, expected an integer in [1, 1024]" \
      run -m "$M" -p hi --threads 100000
    d=$(config_dir patch0 /vision_config/patch_size 0)
    expect_error "'vision_config.patch_size' is 0" info -m "$d"
    cp -r "$M" "$WORK/patch0w" && set_json "$WORK/patch0w/config.json" /vision_config/patch_size 0
    expect_error "'vision_config.patch_size' is 0" info -m "$WORK/patch0w"
    expect_error "'vision_config.patch_size' is 0" run -m "$WORK/patch0w" -p hi -n 1
    # Hangs: a FIFO in each file position (the special_files case covers more kinds).
    cp -r "$M" "$WORK/fifo" && rm "$WORK/fifo/config.json" && mkfifo "$WORK/fifo/config.json"
    expect_error "config.json: not a regular file (a FIFO)" info -m "$WORK/fifo"
    expect_error "config.json: not a regular file (a FIFO)" run -m "$WORK/fifo" -p hi
    # Silent garbage
    for bad in "rms_norm_eps|-1" "rope_theta|0" "rope_theta|-1"; do
      IFS='|' read -r f v <<<"$bad"
      cp -r "$M" "$WORK/g-$f$v" && set_json "$WORK/g-$f$v/config.json" "/text_config/$f" "$v"
      expect_error "'text_config.$f' is $v" run -m "$WORK/g-$f$v" -p hi -n 2
    done
    # All-NaN weights: herd verify reports them (run's generation-time check is wired into
    # runtime/generate by its owner: runtime/nonfinite.h).
    cp -r "$WORK/m1" "$WORK/nan"
    python3 - "$WORK/nan/model.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
for name, e in h.items():
    if name == "__metadata__" or e["dtype"] != "BF16":
        continue
    s, t = e["data_offsets"]
    b[8 + n + s:8 + n + t] = b"\xc0\x7f" * ((t - s) // 2)  # bf16 NaN
open(p, "wb").write(b)
EOF
    expect_error "hold non-finite values" verify -m "$WORK/nan"
    grep -q "non-finite value" "$WORK/out" || fail "verify lists no tensor"
    # A 101-token prompt on max_position_embeddings 16; 0 and 1 positions.
    cp -r "$M" "$WORK/ctx16" && set_json "$WORK/ctx16/config.json" /text_config/max_position_embeddings 16
    prompt=$(printf 'a %.0s' $(seq 1 100))
    expect_error "exceeds the context of 16 tokens" run -m "$WORK/ctx16" -p "$prompt" -n 1
    expect_error "exceeds the context of 16 tokens" run -m "$WORK/ctx16" -p hi -n 100
    d=$(config_dir ctx0 /text_config/max_position_embeddings 0)
    expect_error "'text_config.max_position_embeddings' is 0" info -m "$d"
    expect_error "exceeds the context of 1 tokens" run -m "$M" -p hi -n 1 --ctx 1
    # Sampling values
    for fv in "--temp nan" "--temp inf" "--temp -1" "--top-p 2" "--top-p -1" "--top-p nan" \
      "--top-p 0" "--top-k -5" "--min-p 2" "--min-p nan" "--repeat-penalty 0" \
      "--repeat-penalty -1" "--repeat-penalty nan" "--repeat-penalty inf"; do
      read -r f v <<<"$fv"
      expect_error "$f: got $v, expected" run -m "$M" -p hi "$f" "$v"
    done
    expect_error "--tokens: empty element" logits -m "$M" --tokens 1,,2 -o "$WORK/o"
    expect_error "--positions: got '', expected" logits -m "$M" --tokens 1,2 --positions "" -o "$WORK/o"
    expect_error "--ubatch: got 0" logits -m "$M" --tokens 1,2 --ubatch 0 -o "$WORK/o"
    expect_error "--ubatch: got -1" logits -m "$M" --tokens 1,2 --ubatch -1 -o "$WORK/o"
    # A key repeated in a safetensors header and in the index's weight_map.
    cp -r "$WORK/m1" "$WORK/dup"
    python3 - "$WORK/dup/model.safetensors" <<'EOF'
import struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = b[8:8 + n].decode().rstrip()
first = h[1:h.index("}") + 1]  # '"name":{...}' of the first entry
h = "{" + first + "," + h[1:]
h += " " * ((8 - len(h) % 8) % 8)
open(p, "wb").write(struct.pack("<Q", len(h)) + h.encode() + b[8 + n:])
EOF
    expect_error "appears twice at the top level" info -m "$WORK/dup"
    cp -r "$M" "$WORK/dupidx"
    python3 - "$WORK/dupidx/model.safetensors.index.json" <<'EOF'
import json, sys
p = sys.argv[1]
j = json.load(open(p))
k, v = next(iter(j["weight_map"].items()))
t = json.dumps(j)
t = t.replace('"weight_map": {', '"weight_map": {%s: %s, ' % (json.dumps(k), json.dumps(v)), 1)
open(p, "w").write(t)
EOF
    expect_error "appears twice in 'weight_map'" info -m "$WORK/dupidx"
    # info reports a wrong shape / dtype as run does.
    cp -r "$WORK/m1" "$WORK/shape"
    python3 - "$WORK/shape/model.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
e = h["language_model.model.layers.0.self_attn.k_proj.weight"]
e["shape"] = [e["shape"][1], e["shape"][0]]  # transposed: same bytes, wrong shape
t = json.dumps(h)
t += " " * ((8 - len(t) % 8) % 8)
open(p, "wb").write(struct.pack("<Q", len(t)) + t.encode() + b[8 + n:])
EOF
    expect_error "k_proj.weight' (" info -m "$WORK/shape"
    grep -qF "expected" "$WORK/err" || fail "info shape error has no expected shape"
    expect_error "k_proj.weight' (" run -m "$WORK/shape" -p hi
    # Unclear messages
    expect_error "--n-predict: got -1, expected an integer in [1, " run -m "$M" -p hi -n -1
    expect_error "--top-k: got 1000000000000, expected an integer in [0, 2147483647]" \
      run -m "$M" -p hi --top-k 1000000000000
    d=$(config_dir chunk /text_config/attention_chunk_size 18446744073709551615)
    expect_error "'attention_chunk_size' is 18446744073709551615, too large" info -m "$d"
    cp -r "$M" "$WORK/cfgdir" && rm "$WORK/cfgdir/config.json" && mkdir "$WORK/cfgdir/config.json"
    expect_error "config.json: not a regular file (a directory)" info -m "$WORK/cfgdir"
    expect_error "is a file, expected the model directory" info -m "$M/config.json"
    expect_error "model directory $WORK/nonexistent does not exist" info -m "$WORK/nonexistent"
    d=$(config_dir bos /text_config/bos_token_id 99999999)
    expect_error "config.json: field 'text_config.bos_token_id' is 99999999, outside the vocabulary" info -m "$d"
    d=$(config_dir rope /text_config/rope_scaling/factor -3)
    expect_error "'text_config.rope_scaling.factor' is -3" info -m "$d"
    mkdir -p "$WORK/json" && printf '{\n  "architectures": ["Llama4ForCausalLM"],\n  "hidden_size": ,\n}\n' >"$WORK/json/config.json"
    expect_error "config.json: not valid JSON: parse error at line 3, column" info -m "$WORK/json"
    cp -r "$WORK/m1" "$WORK/hdr"
    python3 - "$WORK/hdr/model.safetensors" <<'EOF'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
b[8 + 1] = ord("!")  # breaks the first key's opening quote
open(p, "wb").write(bytes(b))
EOF
    expect_error "header: not valid JSON: parse error at line 1, column 2" info -m "$WORK/hdr"
    ;;

  special_files)
    # A FIFO, a directory, a symlink loop and a character device in each file position: an error
    # naming the file, never a hang (timeout 60 in expect_error fails a hang).
    synth "$WORK/m"              # 2 shards + index
    synth "$WORK/m1" --shards 1  # model.safetensors
    shard=$(python3 -c "import json,sys; print(sorted(set(json.load(open(sys.argv[1]))['weight_map'].values()))[0])" "$WORK/m/model.safetensors.index.json")
    positions=(
      "m|config.json|info"
      "m1|model.safetensors|info"
      "m|model.safetensors.index.json|info"
      "m|$shard|info"
      "m|tokenizer.json|tokenize"
    )
    for pos in "${positions[@]}"; do
      IFS='|' read -r src file cmd <<<"$pos"
      for kind in fifo dir loop dev; do
        d="$WORK/sp-$kind-$file"
        rm -rf "$d"; cp -r "$WORK/$src" "$d"; rm -f "$d/$file"
        case "$kind" in
          fifo) mkfifo "$d/$file"; want="not a regular file (a FIFO)" ;;
          dir) mkdir "$d/$file"; want="not a regular file (a directory)" ;;
          loop) ln -s "$file.b" "$d/$file"; ln -s "$file" "$d/$file.b"; want="symbolic link loop" ;;
          dev) ln -s /dev/zero "$d/$file"; want="not a regular file (a character device)" ;;
        esac
        expect_error "$want" "$cmd" -m "$d"
        grep -qF "$file" "$WORK/err" || fail "error does not name $file ($kind)"
        if [ "$cmd" = info ]; then expect_error "$want" run -m "$d" -p hi -n 1; fi
      done
    done
    # The prompt file of `run -f`.
    for kind in fifo dir loop dev; do
      f="$WORK/prompt-$kind"
      case "$kind" in
        fifo) mkfifo "$f"; want="not a regular file (a FIFO)" ;;
        dir) mkdir "$f"; want="not a regular file (a directory)" ;;
        loop) ln -s "$f.b" "$f"; ln -s "$f" "$f.b"; want="symbolic link loop" ;;
        dev) ln -s /dev/zero "$f"; want="not a regular file (a character device)" ;;
      esac
      expect_error "$want" run -m "$WORK/m" -f "$f" -n 1
      grep -qF "$f" "$WORK/err" || fail "error does not name the prompt file ($kind)"
    done
    # The model directory itself.
    mkfifo "$WORK/fifo-dir"
    expect_error "is a FIFO, expected the model directory" info -m "$WORK/fifo-dir"
    ln -s "$WORK/loop-b" "$WORK/loop-a"; ln -s "$WORK/loop-a" "$WORK/loop-b"
    expect_error "symbolic link loop" info -m "$WORK/loop-a"
    ;;

  *) echo "unknown case $CASE" >&2; exit 1 ;;
esac

if [ "$FAILS" -ne 0 ]; then
  echo "FAIL ($CASE): $FAILS of $CHECKS checks failed" >&2
  exit 1
fi
echo "ok ($CASE): $CHECKS checks"
