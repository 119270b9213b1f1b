// Llama 4's 2048 special tokens, built the way Meta's models/llama4/tokenizer.py builds them
// (spec §4.2): they follow the 200 000 BPE ranks, so the first one has id 200000.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

inline constexpr int32_t kLlama4NumBaseTokens = 200000;
inline constexpr int32_t kLlama4NumSpecialTokens = 2048;

// Names in id order: element i has id kLlama4NumBaseTokens + i.
const std::vector<std::string>& llama4_special_tokens();

// Names of the structural tokens herd relies on (chat format, stop tokens).
namespace special {
inline constexpr std::string_view kBeginOfText = "<|begin_of_text|>";
inline constexpr std::string_view kEndOfText = "<|end_of_text|>";
inline constexpr std::string_view kHeaderStart = "<|header_start|>";
inline constexpr std::string_view kHeaderEnd = "<|header_end|>";
inline constexpr std::string_view kEom = "<|eom|>";
inline constexpr std::string_view kEot = "<|eot|>";
inline constexpr std::string_view kPythonStart = "<|python_start|>";
inline constexpr std::string_view kPythonEnd = "<|python_end|>";
inline constexpr std::string_view kImage = "<|image|>";
}  // namespace special

}  // namespace herd
