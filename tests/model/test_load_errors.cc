// load_model on broken checkpoints: every error names the directory / file and the tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "herd/convert/synth.h"
#include "herd/io/safetensors.h"
#include "herd/model/weights.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

namespace fs = std::filesystem;
using testutil::fresh_dir;

const std::string kNorm = "model.layers.1.input_layernorm.weight";
const std::string kQ = "model.layers.2.self_attn.q_proj.weight";

// A flat single-file tiny checkpoint, rewritten into `dst` after `edit` changed its tensors.
std::string rewritten(const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  SynthOptions o;
  o.text_only = true;
  return testutil::rewritten_checkpoint(o, edit);
}

std::string load_error(const std::string& dir) {
  auto r = load_model(dir);
  EXPECT_FALSE(r.is_ok());
  return r.is_ok() ? "" : r.status().message();
}

TensorToWrite* find(std::vector<TensorToWrite>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return &t;
  ADD_FAILURE() << "no " << name;
  return &ts[0];
}

TEST(LoadErrors, Unchanged) {
  const std::string d = rewritten([](auto&) {});
  auto r = load_model(d);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
}

TEST(LoadErrors, MissingConfig) {
  const std::string d = fresh_dir("noconfig");
  const std::string e = load_error(d);
  EXPECT_NE(e.find("config.json"), std::string::npos) << e;
  EXPECT_NE(e.find(d), std::string::npos) << e;
}

TEST(LoadErrors, MissingTensor) {
  const std::string d = rewritten([](auto& ts) {
    ts.erase(std::remove_if(ts.begin(), ts.end(), [](auto& t) { return t.name == kQ; }), ts.end());
  });
  const std::string e = load_error(d);
  EXPECT_NE(e.find("missing tensor '" + kQ + "' (expected shape [64, 64])"), std::string::npos)
      << e;
  EXPECT_NE(e.find(d), std::string::npos) << e;
}

TEST(LoadErrors, WrongShape) {
  const std::string d = rewritten([](auto& ts) {
    find(ts, "model.layers.0.self_attn.k_proj.weight")->shape = {64, 32};  // same bytes
  });
  const std::string e = load_error(d);
  EXPECT_NE(e.find("'model.layers.0.self_attn.k_proj.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("shape [64, 32], expected [32, 64]"), std::string::npos) << e;
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << e;
}

TEST(LoadErrors, Fp8AndUnsupportedDtypes) {
  std::string d = rewritten([](auto& ts) {
    TensorToWrite* t = find(ts, kQ);
    t->dtype = DType::F8_E4M3;
    t->data = nullptr;
    t->fill = [](uint8_t* p) { std::memset(p, 0x38, 64 * 64); };
  });
  std::string e = load_error(d);
  // An FP8 weight must come with its per-channel scale (compressed-tensors layout, spec §2.4).
  EXPECT_NE(e.find("is F8_E4M3 but has no"), std::string::npos) << e;
  EXPECT_NE(e.find(kQ), std::string::npos) << e;
  d = rewritten([](auto& ts) {
    TensorToWrite* t = find(ts, kNorm);
    t->dtype = DType::I16;
  });
  e = load_error(d);
  EXPECT_NE(e.find("dtype I16"), std::string::npos) << e;
  EXPECT_NE(e.find(kNorm), std::string::npos) << e;
}

TEST(LoadErrors, F32AndF16Accepted) {
  std::vector<float> gains(64);
  for (int i = 0; i < 64; ++i) gains[size_t(i)] = 0.5f + float(i);
  std::vector<uint16_t> q(64 * 64, f32_to_f16(0.25f));
  const std::string d = rewritten([&](auto& ts) {
    TensorToWrite* n = find(ts, kNorm);
    n->dtype = DType::F32;
    n->data = gains.data();
    TensorToWrite* t = find(ts, kQ);
    t->dtype = DType::F16;
    t->data = q.data();
  });
  auto r = load_model(d);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->text.layers[1].attn_norm, gains);
  EXPECT_EQ(weight_at(r->text.layers[2].wq, 5, 7), 0.25f);
}

TEST(LoadErrors, TruncatedShard) {
  SynthOptions o;
  o.shards = 2;
  const std::string d = testutil::synth_dir("trunc", o);
  const std::string shard = d + "/model-00002-of-00002.safetensors";
  fs::resize_file(shard, 100);
  const std::string e = load_error(d);
  EXPECT_NE(e.find("model-00002-of-00002.safetensors"), std::string::npos) << e;
}

TEST(LoadErrors, IndexPointsAtMissingShard) {
  SynthOptions o;
  o.shards = 2;
  const std::string d = testutil::synth_dir("noshard", o);
  fs::remove(d + "/model-00001-of-00002.safetensors");
  const std::string e = load_error(d);
  EXPECT_NE(e.find("model-00001-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("language_model.model."), std::string::npos) << e;  // names a tensor
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

TEST(LoadErrors, VisionTensorMissing) {
  SynthOptions o;
  o.shards = 1;
  const std::string src = testutil::synth_dir("vsrc", o);
  const std::string dst = fresh_dir("vdst");
  {
    auto store = TensorStore::open_dir(src);
    ASSERT_TRUE(store.is_ok());
    std::vector<TensorToWrite> ts;
    for (const auto& n : (*store)->names()) {
      if (n == "vision_model.class_embedding") continue;
      const TensorView* v = (*store)->find(n);
      ts.push_back({n, v->dtype, v->shape, v->data, {}});
    }
    ASSERT_TRUE(write_safetensors(dst + "/model.safetensors", ts).is_ok());
  }
  fs::copy_file(src + "/config.json", dst + "/config.json");
  const std::string e = load_error(dst);
  EXPECT_NE(e.find("missing tensor 'vision_model.class_embedding' (expected shape [32])"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace herd
