// Shared by the model tests: fresh temp dirs and synthesized checkpoints.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "herd/convert/synth.h"
#include "herd/io/safetensors.h"

namespace herd::testutil {

inline std::string fresh_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path d = std::filesystem::path(::testing::TempDir()) /
                            ("herd_" + std::string(info->test_suite_name()) + "_" + info->name() +
                             "_" + tag + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

inline std::string synth_dir(const std::string& tag, SynthOptions o) {
  o.out_dir = fresh_dir(tag);
  Status s = synth_model(o);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return o.out_dir;
}

// A single-file synthetic checkpoint (o.shards is forced to 1) rewritten into a fresh `dst`
// directory, with config.json, after `edit` changed its list of tensors.
inline std::string rewritten_checkpoint(
    SynthOptions o, const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  o.shards = 1;
  const std::string src = synth_dir("src", o);
  const std::string dst = fresh_dir("dst");
  auto store = TensorStore::open_dir(src);
  EXPECT_TRUE(store.is_ok());
  std::vector<TensorToWrite> ts;
  for (const auto& n : (*store)->names()) {
    const TensorView* v = (*store)->find(n);
    ts.push_back({n, v->dtype, v->shape, v->data, {}});
  }
  edit(ts);
  EXPECT_TRUE(write_safetensors(dst + "/model.safetensors", ts).is_ok());
  std::filesystem::copy_file(src + "/config.json", dst + "/config.json");
  return dst;
}

// A single-shard text-only tiny model whose embedding row of `token` holds a BF16 NaN at
// `column`; config, tokenizer and generation config copied from a clean one.
inline std::string nan_embedding_model(int32_t token, int64_t column) {
  SynthOptions o;
  o.text_only = true;
  o.shards = 1;
  const std::string src = synth_dir("src", o);
  const std::string dst = fresh_dir("nan");
  auto store = TensorStore::open_dir(src);
  EXPECT_TRUE(store.is_ok());
  std::vector<TensorToWrite> ts;
  std::vector<uint16_t> embed;
  for (const auto& n : (*store)->names()) {
    const TensorView* v = (*store)->find(n);
    ts.push_back({n, v->dtype, v->shape, v->data, {}});
    if (n == "model.embed_tokens.weight") {
      EXPECT_EQ(v->dtype, DType::BF16);
      const auto* p = reinterpret_cast<const uint16_t*>(v->data);
      embed.assign(p, p + v->numel());
      embed[size_t(token * v->shape[1] + column)] = 0x7FC0;
      ts.back().data = embed.data();
    }
  }
  EXPECT_FALSE(embed.empty());
  EXPECT_TRUE(write_safetensors(dst + "/model.safetensors", ts).is_ok());
  for (const char* f : {"config.json", "tokenizer.json", "generation_config.json"})
    if (std::filesystem::exists(src + "/" + f))
      std::filesystem::copy_file(src + "/" + f, dst + "/" + f);
  return dst;
}

}  // namespace herd::testutil
