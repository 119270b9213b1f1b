#include "herd/tokenizer/special_tokens.h"

#include <fmt/format.h>

namespace herd {
namespace {

// tokenizer.py's get_reserved_special_tokens(name, count, start_index).
void add_reserved(std::vector<std::string>& out, std::string_view name, int count, int start) {
  for (int i = start; i < start + count; ++i)
    out.push_back(fmt::format("<|{}_reserved_special_token_{}|>", name, i));
}

std::vector<std::string> build() {
  std::vector<std::string> t = {"<|begin_of_text|>", "<|end_of_text|>", "<|fim_prefix|>",
                                "<|fim_middle|>", "<|fim_suffix|>"};
  // Text post-train tokens. Reserved 6 and 7 became python_start/python_end, which is why the
  // generated block starts at 8 (META-LOG f62cac6/823cd86).
  for (const char* s : {"<|header_start|>", "<|header_end|>", "<|eom|>", "<|eot|>", "<|step|>"})
    t.push_back(s);
  add_reserved(t, "text_post_train", 6, 0);
  for (const char* s : {"<|python_start|>", "<|python_end|>", "<|finetune_right_pad|>"})
    t.push_back(s);
  add_reserved(t, "text_post_train", 61, 8);
  // Vision tokens (ids from 200080).
  for (const char* s :
       {"<|image_start|>", "<|image_end|>", "<|vision_reserved_special_token_0|>",
        "<|vision_reserved_special_token_1|>", "<|tile_x_separator|>", "<|tile_y_separator|>",
        "<|vision_reserved_special_token_2|>", "<|vision_reserved_special_token_3|>",
        "<|vision_reserved_special_token_4|>", "<|vision_reserved_special_token_5|>", "<|image|>",
        "<|vision_reserved_special_token_6|>", "<|patch|>"})
    t.push_back(s);
  add_reserved(t, "vision", 1041, 7);
  // Reasoning tokens.
  add_reserved(t, "reasoning", 8, 0);
  t.push_back("<|reasoning_thinking_start|>");
  t.push_back("<|reasoning_thinking_end|>");
  // The rest of the 2048 are generic reserved tokens.
  const int rest = kLlama4NumSpecialTokens - static_cast<int>(t.size());
  for (int i = 0; i < rest; ++i) t.push_back(fmt::format("<|reserved_special_token_{}|>", i));
  return t;
}

}  // namespace

const std::vector<std::string>& llama4_special_tokens() {
  static const std::vector<std::string> tokens = build();
  return tokens;
}

}  // namespace herd
