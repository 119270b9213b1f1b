// `herd synth`: deterministic random values and writing the checkpoint files.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "herd/base/log.h"
#include "herd/base/mapped_file.h"
#include "herd/convert/synth.h"
#include "herd/convert/synth_tokenizer.h"
#include "herd/io/model_dir.h"
#include "herd/io/safetensors.h"

namespace herd {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSynthMetadataKey = "herd_synth";

// splitmix64 seeds xoshiro256**; both are fully specified integer recipes, so the values are
// the same on every compiler and platform (std::*_distribution is not).
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Xoshiro256 {
  uint64_t s[4];
  explicit Xoshiro256(uint64_t seed) {
    for (auto& v : s) v = splitmix64(seed);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

// Approximately normal: the sum of four 16-bit uniforms (Irwin-Hall), centred and scaled to unit
// variance. Integer sums and one double multiply: exact and portable, and more than fine enough
// for values rounded to BF16's 8 significant bits. Each tensor has its own stream, keyed by its
// name, so values do not depend on table order or shard layout.
void synth_fill_bf16(uint64_t seed, const TensorSpec& spec, const Llama4Config& cfg, uint8_t* dst) {
  const auto [mean, std] = synth_init(spec, cfg);
  Xoshiro256 rng(seed ^ fnv1a(spec.name));
  const double scale = std * 1.7320508075688772 / 65536.0;  // sqrt(3) / 2^16
  const int64_t n = spec.numel();
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = rng.next();
    const int64_t sum = int64_t(r & 0xffff) + int64_t((r >> 16) & 0xffff) +
                        int64_t((r >> 32) & 0xffff) + int64_t(r >> 48);
    const double z = double(2 * sum - 262140) * 0.5;  // sum - 4 * 65535/2, exact
    const uint16_t b = f32_to_bf16(float(mean + z * scale));
    dst[2 * i] = uint8_t(b & 0xff);  // safetensors is little-endian
    dst[2 * i + 1] = uint8_t(b >> 8);
  }
}

namespace {

Status copy_tokenizer(const std::string& from, const std::string& to) {
  std::vector<std::pair<fs::path, fs::path>> files;
  if (auto tm = find_tokenizer_model(from))  // keep `original/` if that is where it was
    files.emplace_back(*tm, fs::path(to) / fs::relative(*tm, from));
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "chat_template.jinja", "chat_template.json"})
    if (fs::is_regular_file(fs::path(from) / name))
      files.emplace_back(fs::path(from) / name, fs::path(to) / name);
  for (const auto& [src, dst] : files) {
    std::error_code ec;
    fs::create_directories(dst.parent_path(), ec);
    fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
    if (ec)
      return make_error("synth: cannot copy {} to {}: {}", src.string(), dst.string(),
                        ec.message());
  }
  return Status::ok();
}

std::string generation_config_json(const Llama4Config& cfg) {
  nlohmann::ordered_json j;
  j["bos_token_id"] = cfg.text.bos_token_id.at(0);
  j["eos_token_id"] = cfg.text.eos_token_id;
  if (cfg.text.pad_token_id) j["pad_token_id"] = *cfg.text.pad_token_id;
  j["do_sample"] = true;
  j["temperature"] = 0.6;  // HF-CONV / Meta generation.py defaults (spec §1.1)
  j["top_p"] = 0.9;
  j["transformers_version"] = "4.51.0";
  return j.dump(2) + "\n";
}

}  // namespace

Status synth_model(const SynthOptions& opt) {
  if (opt.out_dir.empty()) return make_error("synth: no output directory");
  HERD_ASSIGN_OR_RETURN(Llama4Config cfg, synth_config(opt));
  if (opt.fp8) cfg.quantization_json = synth_fp8_quantization_json();
  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) return make_error("{}: cannot create directory: {}", opt.out_dir, ec.message());
  const fs::path d(opt.out_dir);
  // Stale weights from an earlier run with another shard count would confuse the loader; only
  // weights an earlier `herd synth` wrote (tagged in __metadata__) are ever deleted.
  const std::vector<std::string> old = list_safetensors(opt.out_dir);
  for (const std::string& p : old) {
    auto f = SafetensorsFile::open(p);
    if (!f || !(*f)->metadata().count(kSynthMetadataKey))
      return make_error("synth: {} holds weights not written by herd synth; refusing to overwrite",
                        opt.out_dir);
  }
  for (const std::string& p : old) fs::remove(p, ec);
  fs::remove(d / kSafetensorsIndexName, ec);

  HERD_TRY(write_text_file((d / "config.json").string(), config_to_json(cfg)));
  HERD_TRY(write_text_file((d / "generation_config.json").string(), generation_config_json(cfg)));
  if (!opt.tokenizer_dir.empty()) {
    HERD_TRY(copy_tokenizer(opt.tokenizer_dir, opt.out_dir));
  } else {
    HERD_TRY(write_text_file((d / "tokenizer.json").string(), fallback_tokenizer_json()));
    HERD_TRY(write_text_file((d / "tokenizer_config.json").string(),
                             fallback_tokenizer_config_json(cfg.text.max_position_embeddings)));
    HERD_TRY(write_text_file((d / "special_tokens_map.json").string(),
                             fallback_special_tokens_map_json()));
  }

  std::vector<TensorSpec> table = opt.fp8 ? text_tensor_table_per_expert(cfg) : tensor_table(cfg);
  if (opt.fp8)
    for (TensorSpec& v : vision_tensor_table(cfg)) table.push_back(std::move(v));
  uint64_t total = 0;
  for (const auto& s : table) total += uint64_t(s.numel()) * 2;
  auto done = std::make_shared<uint64_t>(0);
  auto last_pct = std::make_shared<int>(-1);
  std::vector<TensorToWrite> tensors;
  for (const TensorSpec& spec : table) {
    if (spec.dtype != DType::BF16)
      return make_error("synth: tensor '{}' is not BF16 in the table", spec.name);
    if (opt.fp8 && spec.expert >= 0) {  // FP8 expert + its per-channel scale
      TensorToWrite q{spec.name, DType::F8_E4M3, spec.shape, nullptr, {}};
      q.fill = [&opt, &cfg, spec](uint8_t* dst) {
        synth_fill_fp8(opt.seed, spec, cfg, dst, nullptr);
      };
      TensorToWrite sc{spec.name + "_scale", DType::BF16, {spec.shape[0], 1}, nullptr, {}};
      sc.fill = [&opt, &cfg, spec](uint8_t* dst) {
        synth_fill_fp8(opt.seed, spec, cfg, nullptr, dst);
      };
      tensors.push_back(std::move(q));
      tensors.push_back(std::move(sc));
      continue;
    }
    TensorToWrite t{spec.name, DType::BF16, spec.shape, nullptr, {}};
    t.fill = [&opt, &cfg, spec, total, done, last_pct](uint8_t* dst) {
      synth_fill_bf16(opt.seed, spec, cfg, dst);
      *done += uint64_t(spec.numel()) * 2;
      const int pct = int(*done * 100 / std::max<uint64_t>(total, 1));
      if (opt.progress && pct / 5 != *last_pct / 5) {
        *last_pct = pct;
        fmt::print(stderr, "\rsynth: {:3d}% ({:.2f} / {:.2f} GB)", pct, double(*done) / 1e9,
                   double(total) / 1e9);
        if (pct == 100) fmt::print(stderr, "\n");
      }
    };
    tensors.push_back(std::move(t));
  }
  const int shards = opt.shards > 0 ? opt.shards : synth_default_shards(opt.preset);
  const std::map<std::string, std::string> meta = {
      {"format", "pt"},
      {kSynthMetadataKey, fmt::format("preset={} seed={}", opt.preset, opt.seed)}};
  return write_sharded_safetensors(opt.out_dir, tensors, shards, meta);
}

}  // namespace herd
