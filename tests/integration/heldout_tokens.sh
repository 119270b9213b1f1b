# Sourced by the scripts that score the trained model's held-out text with herd and llama.cpp
# (perplexity_llama_cpp.sh, quant_quality_llama_cpp.sh, bench/quality_trained_vs_llama_cpp.sh).
# heldout_tokens HERD MODEL BYTES DIR: writes DIR/text.txt (the first BYTES of
# MODEL/heldout.txt; all of it when BYTES is 0) and DIR/tokens.json (BOS then herd's token ids,
# what llama.cpp's side is fed), and sets BOS. Returns non-zero, with a message, on failure.
heldout_tokens() {
  local herd=$1 model=$2 bytes=$3 dir=$4
  if [ "$bytes" -gt 0 ]; then
    head -c "$bytes" "$model/heldout.txt" > "$dir/text.txt"
  else
    cp "$model/heldout.txt" "$dir/text.txt"
  fi || { echo "heldout_tokens: cannot read $model/heldout.txt"; return 1; }
  "$herd" tokenize -m "$model" < "$dir/text.txt" > "$dir/ids.json" ||
    { echo "heldout_tokens: herd tokenize failed"; return 1; }
  BOS=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(c.get('bos_token_id', c.get('text_config', {}).get('bos_token_id')))" "$model/config.json") ||
    { echo "heldout_tokens: no bos_token_id in $model/config.json"; return 1; }
  python3 -c "import json,sys; print(json.dumps([int(sys.argv[2])] + json.load(open(sys.argv[1]))))" \
    "$dir/ids.json" "$BOS" > "$dir/tokens.json" ||
    { echo "heldout_tokens: writing tokens.json failed"; return 1; }
}
