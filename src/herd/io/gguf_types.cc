// Every ggml tensor type a GGUF can hold: name, elements per block, bytes per block, as ggml's
// type_traits (ggml/src/ggml.c) give them — checked against libggml's ggml_blck_size /
// ggml_type_size for llama.cpp v0.5.0's build. Sizing every type (not only those herd runs)
// lets the reader check the whole layout and name an unsupported type at the tensor.
#include <array>

#include "herd/io/gguf.h"

namespace herd::gguf {
namespace {

struct TypeTraits {
  const char* name;  // nullptr: an id ggml removed or never used
  uint32_t block;
  uint32_t bytes;
};

constexpr std::array<TypeTraits, 43> kTypes = {{
    {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},     {"Q4_1", 32, 20},
    {nullptr, 0, 0},      {nullptr, 0, 0},     {"Q5_0", 32, 22},     {"Q5_1", 32, 24},
    {"Q8_0", 32, 34},     {"Q8_1", 32, 36},    {"Q2_K", 256, 84},    {"Q3_K", 256, 110},
    {"Q4_K", 256, 144},   {"Q5_K", 256, 176},  {"Q6_K", 256, 210},   {"Q8_K", 256, 292},
    {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136},
    {"I8", 1, 1},         {"I16", 1, 2},       {"I32", 1, 4},        {"I64", 1, 8},
    {"F64", 1, 8},        {"IQ1_M", 256, 56},  {"BF16", 1, 2},       {nullptr, 0, 0},
    {nullptr, 0, 0},      {nullptr, 0, 0},     {"TQ1_0", 256, 54},   {"TQ2_0", 256, 66},
    {nullptr, 0, 0},      {nullptr, 0, 0},     {nullptr, 0, 0},      {"MXFP4", 32, 17},
    {"NVFP4", 64, 36},    {"Q1_0", 128, 18},   {"Q2_0", 64, 18},
}};

const TypeTraits* traits(uint32_t type) {
  return type < kTypes.size() && kTypes[type].name ? &kTypes[type] : nullptr;
}

}  // namespace

const char* ggml_type_name(uint32_t type) {
  const TypeTraits* t = traits(type);
  return t ? t->name : "unknown";
}

uint32_t ggml_block_size(uint32_t type) {
  const TypeTraits* t = traits(type);
  return t ? t->block : 0;
}

uint64_t ggml_row_bytes(uint32_t type, int64_t ne0) {
  const TypeTraits* t = traits(type);
  if (!t || ne0 < 0 || ne0 % t->block != 0) return 0;
  return uint64_t(ne0 / t->block) * t->bytes;
}

}  // namespace herd::gguf
