#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-quantize and llama-perplexity once, from the source bundle that the pinned
# node-llama-cpp package carries (tools/llama-cpp-ref), outside the repository:
#   $HERD_LLAMA_CPP_DIR (default ~/.cache/herd/llama.cpp-<release>)/build/bin/llama-{bench,quantize,perplexity}
# CPU only, Release, with every AVX-512 extension llama.cpp has kernels for (F, VBMI, VNNI, BF16)
# but not AMX: on the machine these benchmarks ran on, ggml's AMX int8 kernels die with SIGILL at
# `tileloadd` inside an OpenMP worker (Q8_0/Q4_0 prefill), so a -march=native build cannot run
# the Q8_0 / Q4_0 benchmarks at all. ggml has no AMX path for BF16, so BF16 is unaffected.
# About 8 minutes on 2 cores. Prints the bin directory on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pkg="$here/tools/llama-cpp-ref/node_modules/node-llama-cpp/llama"
[ -f "$pkg/gitRelease.bundle" ] || { "$here/tools/install-references.sh" >&2; }
[ -f "$pkg/gitRelease.bundle" ] || { echo "build_llama_cpp: $pkg/gitRelease.bundle missing" >&2; exit 1; }
release=$(node -e "console.log(require('$pkg/llama.cpp.info.json').tag)")
dir=${HERD_LLAMA_CPP_DIR:-$HOME/.cache/herd/llama.cpp-$release-avx512}
bin="$dir/build/bin"
have() { [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-quantize" ] && [ -x "$bin/llama-perplexity" ]; }
if have; then echo "$bin"; exit 0; fi
# One build at a time: concurrent callers wait for the first one's result.
mkdir -p "$dir"
exec 9>"$dir/.build.lock"
flock 9
if have; then echo "$bin"; exit 0; fi
if [ ! -d "$dir/src" ]; then
  rm -rf "$dir/src"
  git clone -q "$pkg/gitRelease.bundle" "$dir/src" >&2
fi
cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
  -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON \
  -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF \
  -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_TOOLS=ON >&2
cmake --build "$dir/build" -j "$(nproc)" -t llama-bench llama-quantize llama-perplexity >&2
echo "$bin"
