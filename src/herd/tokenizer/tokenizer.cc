// Encoding and decoding. Loading is in tokenizer_load.cc, the tokenizer.json writer in
// hf_export.cc.
#include "herd/tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "herd/tokenizer/tokenizer_data.h"
#include "herd/tokenizer/utf8.h"

namespace herd {

// ---- TokenIndex ---------------------------------------------------------------------------

uint64_t TokenIndex::hash(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size(), i = 0;
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  uint64_t w = 0;
  std::memcpy(&w, p + i, n - i);
  h = (h ^ w) * 0x94d049bb133111ebull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

void TokenIndex::build(const std::vector<std::string>& tokens, const std::vector<uint8_t>& base) {
  tokens_ = &tokens;
  size_t cap = 16;
  while (cap < tokens.size() * 2) cap *= 2;  // load factor <= 0.5
  slots_.assign(cap, 0);
  mask_ = cap - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (!base[id]) continue;
    uint64_t h = hash(tokens[id]);
    size_t s = h & mask_;
    while (slots_[s] != 0) s = (s + 1) & mask_;
    slots_[s] = ((h >> 32) << 32) | (id + 1);
  }
}

int32_t TokenIndex::find(std::string_view key) const {
  if (slots_.empty()) return -1;
  uint64_t h = hash(key);
  const uint64_t tag = h >> 32;
  for (size_t s = h & mask_;; s = (s + 1) & mask_) {
    uint64_t v = slots_[s];
    if (v == 0) return -1;
    if ((v >> 32) == tag) {
      int32_t id = static_cast<int32_t>((v & 0xffffffffu) - 1);
      if ((*tokens_)[id] == key) return id;
    }
  }
}

// ---- shared helpers -----------------------------------------------------------------------

const std::array<uint32_t, 256>& byte_to_unicode() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[b] = printable ? b : 256 + extra++;
    }
    return t;
  }();
  return table;
}

Status finish_tokenizer_data(Tokenizer::Data& d) {
  std::vector<uint8_t> base(d.tokens.size());
  for (size_t i = 0; i < d.tokens.size(); ++i) base[i] = d.kinds[i] == TokenKind::kBase;
  d.index.build(d.tokens, base);
  std::vector<uint32_t> lengths;
  for (size_t id = 0; id < d.tokens.size(); ++id) {
    if (d.kinds[id] != TokenKind::kSpecial) continue;
    const std::string& name = d.tokens[id];
    if (name.empty()) return make_error("{}: special token {} has an empty name", d.source, id);
    d.special_by_name.emplace(name, static_cast<int32_t>(id));
    d.special_first.set(static_cast<uint8_t>(name[0]));
    lengths.push_back(static_cast<uint32_t>(name.size()));
  }
  std::sort(lengths.begin(), lengths.end(), std::greater<>());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  d.special_lengths = std::move(lengths);
  struct Named {
    std::string_view name;
    int32_t* id;
  };
  for (Named n : {Named{"<|begin_of_text|>", &d.bos}, Named{"<|end_of_text|>", &d.eos},
                  Named{"<|eot|>", &d.eot}, Named{"<|eom|>", &d.eom}}) {
    auto it = d.special_by_name.find(n.name);
    if (it == d.special_by_name.end())
      return make_error("{}: the special token {} is missing", d.source, n.name);
    *n.id = it->second;
  }
  static std::atomic<uint64_t> next_serial{1};
  d.serial = next_serial++;
  return Status::ok();
}

// ---- encoding -----------------------------------------------------------------------------

namespace {

// Per-thread cache of pieces that needed merging (whole-token pieces never reach it). Keyed
// by tokenizer serial so a thread that uses two tokenizers does not mix them up.
struct PieceCache {
  static constexpr size_t kMaxEntries = 1 << 16;
  static constexpr size_t kMaxPieceBytes = 256;
  uint64_t serial = 0;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
};
PieceCache& piece_cache(uint64_t serial) {
  thread_local PieceCache c;
  if (c.serial != serial) c.map.clear(), c.serial = serial;
  return c;
}

// Pieces this long use the heap merge; shorter ones the linear scan (faster when small).
constexpr size_t kHeapMergeBytes = 128;

void merge_piece(const Tokenizer::Data& d, std::string_view piece, std::vector<int32_t>& out) {
  if (d.ranks) {
    auto pair = [&](int32_t, int32_t, std::string_view joined) -> bpe::Merge {
      int32_t id = d.index.find(joined);
      return id < 0 ? bpe::Merge{} : bpe::Merge{static_cast<uint32_t>(id), id};
    };
    if (piece.size() >= kHeapMergeBytes)
      return bpe::merge_heap(piece, d.byte_ids.data(), pair, out);
    return bpe::merge_linear(piece, d.byte_ids.data(), pair, out);
  }
  auto pair = [&](int32_t l, int32_t r, std::string_view) -> bpe::Merge {
    auto it = d.merges.find((static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) |
                            static_cast<uint32_t>(r));
    return it == d.merges.end() ? bpe::Merge{} : it->second;
  };
  if (piece.size() >= kHeapMergeBytes) return bpe::merge_heap(piece, d.byte_ids.data(), pair, out);
  bpe::merge_linear(piece, d.byte_ids.data(), pair, out);
}

void encode_piece(const Tokenizer::Data& d, std::string_view piece, std::vector<int32_t>& out) {
  if (piece.size() == 1) {
    out.push_back(d.byte_ids[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (d.ranks || d.ignore_merges) {  // tiktoken: a piece that is a token is that token
    int32_t id = d.index.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (piece.size() > PieceCache::kMaxPieceBytes) return merge_piece(d, piece, out);
  PieceCache& cache = piece_cache(d.serial);
  auto it = cache.map.find(piece);
  if (it != cache.map.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  size_t before = out.size();
  merge_piece(d, piece, out);
  if (cache.map.size() >= PieceCache::kMaxEntries) cache.map.clear();
  cache.map.emplace(std::string(piece), std::vector<int32_t>(out.begin() + before, out.end()));
}

// Length of the special token that starts at text[pos], or 0; its id in *id.
size_t match_special(const Tokenizer::Data& d, std::string_view text, size_t pos, int32_t* id) {
  if (!d.special_first.test(static_cast<uint8_t>(text[pos]))) return 0;
  for (uint32_t len : d.special_lengths) {  // longest first
    if (pos + len > text.size()) continue;
    auto it = d.special_by_name.find(text.substr(pos, len));
    if (it != d.special_by_name.end()) {
      *id = it->second;
      return len;
    }
  }
  return 0;
}

}  // namespace

void Tokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  thread_local std::vector<std::pair<uint32_t, uint32_t>> pieces;
  pieces.clear();
  data_->regex.split(text, pieces);
  for (auto [b, e] : pieces) encode_piece(*data_, text.substr(b, e - b), out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::sanitize(text);
    text = repaired;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 4 + 4);
  // Meta's chunking comes first, and tiktoken looks for specials inside each chunk.
  for (std::string_view chunk : meta_chunks(text)) {
    if (!allow_special || data_->special_lengths.empty()) {
      encode_ordinary(chunk, out);
      continue;
    }
    size_t start = 0;
    for (size_t pos = 0; pos < chunk.size();) {
      int32_t id;
      size_t len = match_special(*data_, chunk, pos, &id);
      if (len == 0) {
        ++pos;
        continue;
      }
      encode_ordinary(chunk.substr(start, pos - start), out);
      out.push_back(id);
      pos += len;
      start = pos;
    }
    encode_ordinary(chunk.substr(start), out);
  }
  return out;
}

// ---- decoding and accessors ---------------------------------------------------------------

Result<std::string_view> Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size() || data_->kinds[id] == TokenKind::kHole)
    return make_error("token id {} is not in the vocabulary of {} (size {})", id, data_->source,
                      vocab_size());
  return std::string_view(data_->tokens[id]);
}

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    HERD_ASSIGN_OR_RETURN(std::string_view bytes, token_bytes(id));
    out.append(bytes);
  }
  return out;
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(data_->tokens.size());
}

std::optional<int32_t> Tokenizer::special_id(std::string_view name) const {
  auto it = data_->special_by_name.find(name);
  if (it == data_->special_by_name.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && data_->kinds[id] == TokenKind::kSpecial;
}

int32_t Tokenizer::bos_id() const {
  return data_->bos;
}
int32_t Tokenizer::eos_id() const {
  return data_->eos;
}
int32_t Tokenizer::eot_id() const {
  return data_->eot;
}
int32_t Tokenizer::eom_id() const {
  return data_->eom;
}
std::vector<int32_t> Tokenizer::stop_ids() const {
  return {data_->eos, data_->eom, data_->eot};
}
bool Tokenizer::from_ranks() const {
  return data_->ranks;
}
const std::string& Tokenizer::source() const {
  return data_->source;
}

}  // namespace herd
