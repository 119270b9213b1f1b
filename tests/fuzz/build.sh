#!/usr/bin/env bash
# Builds a fuzz target with clang (-fsanitize=fuzzer,address,undefined) apart from the gcc
# build. usage: build.sh SOURCE_DIR OUT_BINARY [TARGET]   (TARGET: request (default) or image)
set -euo pipefail
src=$1 out=$2 target=${3:-request}
cd "$src"
case $target in
  request) srcs=(src/herd/server/api_request.cc src/herd/server/data_url.cc
                 src/herd/runtime/request_check.cc) ;;
  image) srcs=() ;;
  *) echo "unknown fuzz target $target" >&2; exit 2 ;;
esac
srcs+=(src/herd/io/image.cc src/herd/io/exif_orientation.cc src/herd/model/vision_preprocess.cc
       src/herd/tokenizer/*.cc src/herd/base/*.cc)
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc -I/usr/include/stb "${srcs[@]}" "tests/fuzz/fuzz_$target.cc" -o "$out" -lfmt -lpcre2-8
