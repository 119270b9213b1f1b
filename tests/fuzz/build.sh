#!/usr/bin/env bash
# Builds fuzz targets with clang (-fsanitize=fuzzer,address,undefined) apart from the gcc build,
# from the sources that parse their input (and what they link against). Each source is compiled
# once into OUT_DIR/obj and shared by every target that needs it (most targets share base/ and
# the tokenizer loaders), in parallel over the machine's cores; an object is rebuilt when its
# source or any header it includes (clang's -MMD list) is newer.
# usage: build.sh SOURCE_DIR OUT_DIR TARGET...   -> OUT_DIR/fuzz_TARGET
#   TARGET: request, image, gguf, safetensors, config, tokenizer, or all
set -euo pipefail
src=$1 out=$2
shift 2
targets=("$@")
[ "${targets[*]}" = all ] && targets=(request image gguf safetensors config tokenizer)
cd "$src"
base=(src/herd/base/*.cc)
# The tokenizer loaders include the GGUF one (tokenizer_gguf.cc), which reads io/gguf*.
tok=(src/herd/tokenizer/*.cc src/herd/io/gguf_read.cc src/herd/io/gguf_value.cc
     src/herd/io/gguf_types.cc src/herd/io/gguf_files.cc)
sources_of() {
  case $1 in
    request) echo src/herd/server/api_request.cc src/herd/server/data_url.cc \
                  src/herd/runtime/request_check.cc src/herd/runtime/image_token_count.cc \
                  src/herd/io/image.cc src/herd/io/exif_orientation.cc \
                  src/herd/model/vision_preprocess.cc "${tok[@]}" ;;
    image) echo src/herd/io/image.cc src/herd/io/exif_orientation.cc \
                src/herd/model/vision_preprocess.cc src/herd/runtime/image_token_count.cc \
                "${tok[@]}" ;;
    gguf) echo src/herd/io/gguf_read.cc src/herd/io/gguf_value.cc src/herd/io/gguf_types.cc ;;
    safetensors) echo src/herd/io/safetensors.cc src/herd/io/tensor_store.cc \
                      src/herd/io/json_parse.cc src/herd/io/model_dir.cc src/herd/quant/*.cc ;;
    config) echo src/herd/model/config.cc src/herd/model/config_ranges.cc \
                 src/herd/io/json_parse.cc src/herd/io/model_dir.cc ;;
    tokenizer) echo "${tok[@]}" src/herd/io/json_parse.cc src/herd/io/model_dir.cc ;;
    *) echo "unknown fuzz target $1" >&2; return 2 ;;
  esac
}
declare -A all_sources=()
for t in "${targets[@]}"; do
  list=$(sources_of "$t")
  for s in $list "${base[@]}" "tests/fuzz/fuzz_$t.cc"; do all_sources[$s]=1; done
done
obj_of() { echo "$out/obj/${1//\//_}.o"; }
export out
# The sources whose object is missing or older than the source or one of its headers.
stale=()
for s in "${!all_sources[@]}"; do
  o=$(obj_of "$s")
  d=${o%.o}.d
  if [ ! -f "$o" ] || [ ! -f "$d" ] || [ -n "$(find "$s" $(sed -e 's/^[^:]*://' -e 's/\\$//' "$d") \
      -newer "$o" 2>/dev/null | head -1)" ]; then
    stale+=("$s")
  fi
done
mkdir -p "$out/obj"
if [ ${#stale[@]} -gt 0 ]; then
  printf '%s\n' "${stale[@]}" | xargs -P "$(nproc)" -I{} bash -c '
    s={}; o="$out/obj/${s//\//_}.o"
    clang++ -std=c++20 -O1 -gline-tables-only -fsanitize=fuzzer-no-link,address,undefined \
      -fno-sanitize-recover=undefined -Isrc -I/usr/include/stb -MMD -MF "${o%.o}.d" \
      -c "$s" -o "$o"'
fi
for t in "${targets[@]}"; do
  objs=()
  for s in $(sources_of "$t") "${base[@]}" "tests/fuzz/fuzz_$t.cc"; do objs+=("$(obj_of "$s")"); done
  bin="$out/fuzz_$t"
  [ -x "$bin" ] && [ -z "$(find "${objs[@]}" -newer "$bin" | head -1)" ] && continue
  clang++ -fsanitize=fuzzer,address,undefined "${objs[@]}" -o "$out/fuzz_$t" -lfmt -lpcre2-8
done
