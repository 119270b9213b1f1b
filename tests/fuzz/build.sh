#!/usr/bin/env bash
# Builds the request fuzz target with clang (-fsanitize=fuzzer,address,undefined) apart from
# the gcc build. usage: build.sh SOURCE_DIR OUT_BINARY
set -euo pipefail
src=$1 out=$2
cd "$src"
srcs=(src/herd/server/api_request.cc src/herd/runtime/request_check.cc src/herd/tokenizer/*.cc
      src/herd/base/*.cc)
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc "${srcs[@]}" tests/fuzz/fuzz_request.cc -o "$out" -lfmt -lpcre2-8
