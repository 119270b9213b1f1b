// Loading a Tokenizer from tiktoken ranks (tokenizer.model) or a Hugging Face tokenizer.json.
#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "herd/base/mapped_file.h"
#include "herd/tokenizer/special_tokens.h"
#include "herd/tokenizer/tokenizer_data.h"
#include "herd/tokenizer/utf8.h"

namespace herd {

namespace {

// Strict base64 (RFC 4648 with padding), as tiktoken's load_tiktoken_bpe uses.
bool base64_decode(std::string_view in, std::string& out) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0, ++pad;
      } else if (pad > 0 || (v[k] = val(c)) < 0) {
        return false;
      }
    }
    uint32_t w = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<char>(w >> 16));
    if (pad < 2) out.push_back(static_cast<char>((w >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(w & 0xFF));
  }
  return true;
}

Status fill_byte_ids(Tokenizer::Data& d, const TokenIndex& index) {
  for (int b = 0; b < 256; ++b) {
    int32_t id = index.find(std::string(1, static_cast<char>(b)));
    if (id < 0)
      return make_error("{}: no token for the single byte 0x{:02X} (byte-level BPE needs all 256)",
                        d.source, b);
    d.byte_ids[b] = id;
  }
  return Status::ok();
}

}  // namespace

Result<Tokenizer> Tokenizer::from_tiktoken(std::string_view text, const std::string& source) {
  auto d = std::make_shared<Data>();
  d->source = source;
  d->ranks = true;
  std::string bytes;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? text.size() - pos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    int64_t rank = -1;
    if (sp != std::string_view::npos) {
      auto [p, ec] = std::from_chars(line.data() + sp + 1, line.data() + line.size(), rank);
      if (ec != std::errc() || p != line.data() + line.size()) rank = -1;
    }
    if (sp == std::string_view::npos || rank < 0 || rank >= kMaxVocab)
      return make_error("{} line {}: expected '<base64 token> <rank>'", source, line_no);
    if (!base64_decode(line.substr(0, sp), bytes))
      return make_error("{} line {}: token is not valid base64", source, line_no);
    if (static_cast<size_t>(rank) >= d->tokens.size()) {
      d->tokens.resize(rank + 1);
      d->kinds.resize(rank + 1, TokenKind::kHole);
    }
    if (d->kinds[rank] != TokenKind::kHole)
      return make_error("{} line {}: rank {} appears twice", source, line_no, rank);
    d->tokens[rank] = bytes;
    d->kinds[rank] = TokenKind::kBase;
  }
  const size_t n_base = d->tokens.size();
  for (size_t r = 0; r < n_base; ++r)
    if (d->kinds[r] == TokenKind::kHole)
      return make_error("{}: rank {} is missing (ranks must be 0..{})", source, r, n_base - 1);
  // Meta numbers the special tokens right after the ranks (num_base_tokens + i).
  for (const std::string& name : llama4_special_tokens()) {
    d->tokens.push_back(name);
    d->kinds.push_back(TokenKind::kSpecial);
  }
  HERD_ASSIGN_OR_RETURN(d->regex, SplitRegex::compile(kLlama4SplitPattern));
  HERD_TRY(finish_tokenizer_data(*d));
  HERD_TRY(fill_byte_ids(*d, d->index));
  for (size_t r = 0; r < n_base; ++r)
    if (d->index.find(d->tokens[r]) != static_cast<int32_t>(r))
      return make_error("{}: the bytes of rank {} appear under another rank too", source, r);
  return TokenizerBuilder::make(std::move(d));
}

Result<Tokenizer> Tokenizer::from_tiktoken_file(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(MappedFile f, MappedFile::open(path));
  return from_tiktoken(std::string_view(reinterpret_cast<const char*>(f.data()), f.size()), path);
}

Result<Tokenizer> Tokenizer::from_hf_json_file(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return from_hf_json(text, path);
}

Result<Tokenizer> Tokenizer::load(const std::string& model_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // Anything at a tokenizer's path is opened, so a FIFO, directory or symlink loop there is
  // refused by name (MappedFile / read_text_file open regular files only) instead of skipped.
  if (!fs::is_directory(model_dir, ec))
    return make_error("model directory {}: {}", model_dir,
                      path_present(model_dir) ? "not a directory" : "does not exist");
  for (const char* rel : {"tokenizer.model", "original/tokenizer.model"}) {
    fs::path p = fs::path(model_dir) / rel;
    if (path_present(p.string())) return from_tiktoken_file(p.string());
  }
  fs::path json = fs::path(model_dir) / "tokenizer.json";
  if (path_present(json.string())) return from_hf_json_file(json.string());
  return make_error("{}: no tokenizer.model, original/tokenizer.model or tokenizer.json",
                    model_dir);
}

}  // namespace herd
