#!/usr/bin/env bash
# CLI checks of the loader: `herd info` on broken model directories must fail cleanly
# ("herd: error: ..." on stderr, exit code 1: not 0, not a signal, no sanitizer report), and on
# config-only directories must print the parameter totals of spec §1.1.
# usage: loader_cli.sh HERD CASE
set -u
HERD=$1
CASE=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/herd-loader-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL ($CASE): $*" >&2; exit 1; }

# Runs herd with the given args; expects a clean error.
expect_clean_error() {
  "$HERD" "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  cat "$WORK/err" >&2
  [ "$rc" -ne 0 ] || fail "exit code 0 for: $*"
  [ "$rc" -lt 128 ] || fail "killed by a signal (exit $rc) for: $*"
  grep -q "^herd: error:" "$WORK/err" || fail "no 'herd: error:' line for: $*"
  if grep -qE "Sanitizer|runtime error" "$WORK/err"; then fail "sanitizer report for: $*"; fi
  return 0
}

synth_tiny() {  # DIR [extra synth args]
  local d=$1; shift
  "$HERD" synth --preset tiny -o "$d" "$@" >/dev/null 2>"$WORK/synth.err" ||
    { cat "$WORK/synth.err" >&2; fail "herd synth failed"; }
}

scout_text='"hidden_size":5120,"num_hidden_layers":48,"num_attention_heads":40,
  "num_key_value_heads":8,"head_dim":128,"vocab_size":202048,"num_local_experts":16,
  "intermediate_size":8192,"intermediate_size_mlp":16384,"attention_chunk_size":8192,
  "rope_scaling":{"rope_type":"llama3","factor":16.0,"low_freq_factor":1.0,
  "high_freq_factor":1.0,"original_max_position_embeddings":8192},"use_qk_norm":true'
vision='"vision_config":{"hidden_size":1408,"num_hidden_layers":34,"num_attention_heads":16,
  "intermediate_size":5632,"image_size":336,"patch_size":14,"pixel_shuffle_ratio":0.5,
  "projector_input_dim":4096,"projector_output_dim":4096,"vision_output_dim":4096}'

case "$CASE" in
  synth_and_info)
    synth_tiny "$WORK/m"
    "$HERD" info -m "$WORK/m" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err"; fail "info failed"; }
    grep -q "BF16" "$WORK/out" || fail "no BF16 bytes line"
    "$HERD" info -m "$WORK/m" --json >"$WORK/out.json" || fail "info --json failed"
    grep -q '"active_per_token"' "$WORK/out.json" || fail "no active_per_token in JSON"
    ;;
  truncated_shard)
    synth_tiny "$WORK/m"
    truncate -s 100 "$WORK/m/model-00002-of-00002.safetensors"
    expect_clean_error info -m "$WORK/m"
    grep -q "model-00002-of-00002.safetensors" "$WORK/err" || fail "error does not name the shard"
    ;;
  garbage_shard)
    synth_tiny "$WORK/m" --shards 1
    head -c 4096 /dev/urandom >"$WORK/m/model.safetensors"
    expect_clean_error info -m "$WORK/m"
    ;;
  missing_shard)
    synth_tiny "$WORK/m"
    rm "$WORK/m/model-00001-of-00002.safetensors"
    expect_clean_error info -m "$WORK/m"
    grep -q "does not exist" "$WORK/err" || fail "error does not say the shard is missing"
    ;;
  missing_config)
    mkdir -p "$WORK/empty"
    expect_clean_error info -m "$WORK/empty"
    grep -q "config.json" "$WORK/err" || fail "error does not name config.json"
    ;;
  bad_config)
    mkdir -p "$WORK/m"
    echo '{"architectures": ["Llama4ForCausalLM"], "hidden_size": ' >"$WORK/m/config.json"
    expect_clean_error info -m "$WORK/m"
    ;;
  scout_config_only)
    mkdir -p "$WORK/m"
    echo "{\"architectures\":[\"Llama4ForConditionalGeneration\"],\"text_config\":{$scout_text},$vision}" \
      >"$WORK/m/config.json"
    "$HERD" info -m "$WORK/m" >"$WORK/out" || fail "info failed"
    cat "$WORK/out"
    grep -q "text 107.77 B" "$WORK/out" || fail "Scout text is not 107.77 B"
    grep -q "total 108.64 B" "$WORK/out" || fail "Scout total is not 108.64 B"
    ;;
  maverick_config_only)
    mkdir -p "$WORK/m"
    mav=${scout_text/\"num_local_experts\":16/\"num_local_experts\":128,\"interleave_moe_layer_step\":2}
    mav=${mav/\"use_qk_norm\":true/\"use_qk_norm\":false}
    echo "{\"architectures\":[\"Llama4ForConditionalGeneration\"],\"text_config\":{$mav},$vision}" \
      >"$WORK/m/config.json"
    "$HERD" info -m "$WORK/m" >"$WORK/out" || fail "info failed"
    grep -q "total 401.58 B" "$WORK/out" || { cat "$WORK/out"; fail "Maverick total is not 401.58 B"; }
    ;;
  *) fail "unknown case" ;;
esac
echo "ok ($CASE)"
