#!/usr/bin/env bash
# Builds a fuzz target with clang (-fsanitize=fuzzer,address,undefined) apart from the gcc
# build, from the sources that parse its input (and what they link against).
# usage: build.sh SOURCE_DIR OUT_BINARY [TARGET]
#   TARGET: request (default), image, gguf, safetensors, config, tokenizer
set -euo pipefail
src=$1 out=$2 target=${3:-request}
cd "$src"
base=(src/herd/base/*.cc)
# The tokenizer loaders include the GGUF one (tokenizer_gguf.cc), which reads io/gguf*.
tok=(src/herd/tokenizer/*.cc src/herd/io/gguf_read.cc src/herd/io/gguf_value.cc
     src/herd/io/gguf_types.cc src/herd/io/gguf_files.cc)
case $target in
  request) srcs=(src/herd/server/api_request.cc src/herd/server/data_url.cc
                 src/herd/runtime/request_check.cc src/herd/runtime/image_token_count.cc
                 src/herd/io/image.cc
                 src/herd/io/exif_orientation.cc src/herd/model/vision_preprocess.cc
                 "${tok[@]}") ;;
  image) srcs=(src/herd/io/image.cc src/herd/io/exif_orientation.cc
               src/herd/model/vision_preprocess.cc src/herd/runtime/image_token_count.cc
               "${tok[@]}") ;;
  gguf) srcs=(src/herd/io/gguf_read.cc src/herd/io/gguf_value.cc src/herd/io/gguf_types.cc) ;;
  safetensors) srcs=(src/herd/io/safetensors.cc src/herd/io/tensor_store.cc
                     src/herd/io/json_parse.cc src/herd/io/model_dir.cc
                     src/herd/quant/*.cc) ;;
  config) srcs=(src/herd/model/config.cc src/herd/model/config_ranges.cc
                src/herd/io/json_parse.cc src/herd/io/model_dir.cc) ;;
  tokenizer) srcs=("${tok[@]}" src/herd/io/json_parse.cc src/herd/io/model_dir.cc) ;;
  *) echo "unknown fuzz target $target" >&2; exit 2 ;;
esac
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc -I/usr/include/stb "${srcs[@]}" "${base[@]}" "tests/fuzz/fuzz_$target.cc" -o "$out" \
  -lfmt -lpcre2-8
