#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-quantize once, from the source bundle that the pinned
# node-llama-cpp package carries (tools/llama-cpp-ref), outside the repository:
#   $HERD_LLAMA_CPP_DIR (default ~/.cache/herd/llama.cpp-<release>)/build/bin/{llama-bench,llama-quantize}
# CPU only, Release, native (-DGGML_NATIVE=ON: the same machine-specific code llama.cpp users get).
# About 8 minutes on 2 cores. Prints the bin directory on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pkg="$here/tools/llama-cpp-ref/node_modules/node-llama-cpp/llama"
[ -f "$pkg/gitRelease.bundle" ] || { "$here/tools/install-references.sh" >&2; }
[ -f "$pkg/gitRelease.bundle" ] || { echo "build_llama_cpp: $pkg/gitRelease.bundle missing" >&2; exit 1; }
release=$(node -e "console.log(require('$pkg/llama.cpp.info.json').tag)")
dir=${HERD_LLAMA_CPP_DIR:-$HOME/.cache/herd/llama.cpp-$release}
bin="$dir/build/bin"
if [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-quantize" ]; then echo "$bin"; exit 0; fi
if [ ! -d "$dir/src" ]; then
  rm -rf "$dir/src" && mkdir -p "$dir"
  git clone -q "$pkg/gitRelease.bundle" "$dir/src" >&2
fi
cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_TOOLS=ON >&2
cmake --build "$dir/build" -j "$(nproc)" -t llama-bench llama-quantize >&2
echo "$bin"
