// Constrained decoding: a per-sequence rule for which tokens may come next. The server uses it to
// make `tool_choice: "required"` or a named function produce a well-formed call, as OpenAI's API
// promises (llama.cpp does the same with a grammar, vLLM with guided decoding).
//
// A ByteGrammar accepts text byte by byte; GrammarConstraint<G> lifts it to tokens by feeding each
// candidate token's bytes to a copy of the grammar state. The grammar state is a small value type
// (no heap), so testing the whole vocabulary is a copy and a few byte steps per token; tokens whose
// first byte cannot come next are skipped without a copy.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace herd {

class Tokenizer;

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // A fresh copy in the same state (each choice of a request walks its own).
  virtual std::unique_ptr<TokenConstraint> clone() const = 0;
  // True when the text so far is a whole sentence of the grammar: the sequence ends here.
  virtual bool complete() const = 0;
  // Sets logits[id] = -inf for every id that may not come next; returns how many ids are left.
  virtual int64_t mask(float* logits, int64_t vocab) const = 0;
  // Advances past a token that mask() allowed.
  virtual void accept(int32_t id) = 0;
};

// Every token's bytes, built once per tokenizer; special tokens are empty (never allowed).
struct TokenBytes {
  std::vector<std::string> bytes;
  static std::shared_ptr<const TokenBytes> of(const Tokenizer& tok);
};

// G: a copyable value type with `bool feed(uint8_t)` (false: the byte cannot come next) and
// `bool complete() const`.
template <class G>
class GrammarConstraint final : public TokenConstraint {
 public:
  GrammarConstraint(std::shared_ptr<const TokenBytes> bytes, G grammar)
      : bytes_(std::move(bytes)), g_(std::move(grammar)) {}

  std::unique_ptr<TokenConstraint> clone() const override {
    return std::make_unique<GrammarConstraint>(*this);
  }
  bool complete() const override { return g_.complete(); }

  int64_t mask(float* logits, int64_t vocab) const override {
    std::array<bool, 256> first{};
    for (int b = 0; b < 256; ++b) {
      G g = g_;
      first[size_t(b)] = g.feed(uint8_t(b));
    }
    int64_t left = 0;
    const auto& table = bytes_->bytes;
    for (int64_t id = 0; id < vocab; ++id) {
      const bool ok = id < int64_t(table.size()) && allows(table[size_t(id)], first);
      if (ok)
        ++left;
      else
        logits[id] = -std::numeric_limits<float>::infinity();
    }
    return left;
  }

  void accept(int32_t id) override {
    for (const char c : bytes_->bytes.at(size_t(id))) g_.feed(uint8_t(c));
  }

  const G& grammar() const { return g_; }

 private:
  bool allows(const std::string& s, const std::array<bool, 256>& first) const {
    if (s.empty() || !first[uint8_t(s[0])]) return false;
    G g = g_;
    for (const char c : s)
      if (!g.feed(uint8_t(c))) return false;
    return true;
  }

  std::shared_ptr<const TokenBytes> bytes_;
  G g_;
};

}  // namespace herd
