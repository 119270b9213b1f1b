// Test helper: Meta's Llama 4 tokenizer.model from shared/llama4, loaded once per process.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "herd/tokenizer/tokenizer.h"

namespace herd::test {

inline std::string shared_llama4(const std::string& file) {
  return std::string(HERD_SHARED_DIR) + "/llama4/" + file;
}

inline const Tokenizer& llama4_tokenizer() {
  static const Tokenizer* tok = [] {
    auto r = Tokenizer::from_tiktoken_file(shared_llama4("tokenizer.model"));
    if (!r) {
      ADD_FAILURE() << r.status().message();
      std::abort();  // every test in the binary needs it
    }
    return new Tokenizer(std::move(r).value());
  }();
  return *tok;
}

}  // namespace herd::test
