// A Tokenizer from a GGUF file's tokenizer.ggml.* keys (what llama.cpp's converter writes for
// Llama 4: model "gpt2", pre "llama4", tokens in GPT-2 byte spelling, token_type, merges "a b").
#pragma once

#include <string>

#include "herd/base/status.h"
#include "herd/io/gguf.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {

// Token types (llama.cpp's llama_token_type): NORMAL and BYTE tokens are vocabulary entries,
// CONTROL and USER_DEFINED are specials, UNUSED ids (the converter's "[PADn]" fillers) and
// UNKNOWN stay holes. Errors name `r`'s source and the key.
Result<Tokenizer> tokenizer_from_gguf(const gguf::Reader& r, const std::string& source);

// The tokenizer of `model`: a .gguf file (any part of a split set: the first part holds the
// vocabulary) or a model directory (Tokenizer::load).
Result<Tokenizer> load_tokenizer_for(const std::string& model);

}  // namespace herd
