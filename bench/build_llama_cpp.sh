#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-quantize and llama-perplexity once, from the source bundle that the pinned
# node-llama-cpp package carries (tools/llama-cpp-ref), outside the repository:
#   $HERD_LLAMA_CPP_DIR (default ~/.cache/herd/llama.cpp-<release>-<cpu>)/build/bin/llama-{bench,quantize,perplexity}
# CPU only, Release, for the vector extensions this machine has, named in <cpu>:
#   avx512        AVX-512 F/BW/VL/DQ with VBMI, VNNI and BF16 (Zen 4/5, Sapphire Rapids and later);
#   avx512-<ext>  AVX-512 with only the extensions listed (e.g. avx512-vnni on Cascade Lake);
#   avx2          AVX2 + FMA + F16C + BMI2 (Zen 1-3, Haswell to Skylake client);
#   sse           none of these.
# Never AMX: on the machine these benchmarks first ran on, ggml's AMX int8 kernels died with SIGILL
# at `tileloadd` inside an OpenMP worker (Q8_0/Q4_0 prefill), so a -march=native build could not
# run the Q8_0 / Q4_0 benchmarks at all (ggml has no AMX path for BF16). Nor -march=native for
# the rest: the flags are explicit so the cache directory names what the build can run on (a
# build for AVX-512 dies with SIGILL on an AVX2-only machine; seen on a Zen 1).
# About 8 minutes on 2 cores. Prints the bin directory on stdout; `--bin-dir` prints it without
# building.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pkg="$here/tools/llama-cpp-ref/node_modules/node-llama-cpp/llama"
if [ "${1:-}" != --bin-dir ]; then
  [ -f "$pkg/gitRelease.bundle" ] || { "$here/tools/install-references.sh" >&2; }
  [ -f "$pkg/gitRelease.bundle" ] || { echo "build_llama_cpp: $pkg/gitRelease.bundle missing" >&2; exit 1; }
fi
[ -f "$pkg/llama.cpp.info.json" ] || { echo "build_llama_cpp: $pkg missing (tools/install-references.sh)" >&2; exit 1; }
release=$(node -e "console.log(require('$pkg/llama.cpp.info.json').tag)")
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { for f; do [[ $flags == *" $f "* ]] || return 1; done; }
ggml=(-DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF -DGGML_AVX512=OFF
  -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF)
cpu=sse
if has avx avx2 fma f16c bmi2; then
  cpu=avx2
  ggml+=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)
  if has avx512f avx512cd avx512bw avx512vl avx512dq; then
    ggml+=(-DGGML_AVX512=ON)
    ext=()
    has avx512vbmi && ext+=(vbmi) && ggml+=(-DGGML_AVX512_VBMI=ON)
    has avx512_vnni && ext+=(vnni) && ggml+=(-DGGML_AVX512_VNNI=ON)
    has avx512_bf16 && ext+=(bf16) && ggml+=(-DGGML_AVX512_BF16=ON)
    cpu=avx512
    [ ${#ext[@]} -eq 3 ] || cpu=$(IFS=-; echo "avx512${ext[*]:+-${ext[*]}}")
  fi
fi
dir=${HERD_LLAMA_CPP_DIR:-$HOME/.cache/herd/llama.cpp-$release-$cpu}
bin="$dir/build/bin"
if [ "${1:-}" = --bin-dir ]; then echo "$bin"; exit 0; fi
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
cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF "${ggml[@]}" \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_TOOLS=ON >&2
cmake --build "$dir/build" -j "$(nproc)" -t llama-bench llama-quantize llama-perplexity >&2
echo "$bin"
