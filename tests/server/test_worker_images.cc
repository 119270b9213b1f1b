// The engine worker encodes a job's images and splices them (issue 13): a chat prompt with two
// images streams a reply, its prompt_tokens count both images' tokens, and an image sent to a
// model without a vision encoder fails the job before any token.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "herd/convert/synth.h"
#include "herd/server/engine_worker.h"

namespace herd::server {
namespace {

Image make_image(int w, int h, int seed) {
  Image img{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t((i * (seed + 3)) >> 4);
  return img;
}

std::unique_ptr<Engine> open_engine(const std::string& dir, bool text_only) {
  SynthOptions o;
  o.out_dir = dir;
  o.text_only = text_only;
  EXPECT_TRUE(synth_model(o).is_ok());
  EngineOptions eo;
  eo.model_dir = dir;
  eo.threads = 2;
  eo.progress = false;
  eo.sched.max_seqs = 4;
  auto e = Engine::open(eo);
  EXPECT_TRUE(e.is_ok()) << e.status().message();
  return std::move(e).value();
}

// Runs a job to the end; returns the finished events.
std::vector<ChoiceEvent> run_job(EngineWorker& w, const std::shared_ptr<Job>& job, Status* st) {
  auto fut = job->submitted.get_future();
  EXPECT_TRUE(w.enqueue(job).is_ok());
  *st = fut.get();
  std::vector<ChoiceEvent> done, evs;
  if (!st->is_ok()) return done;
  while (int64_t(done.size()) < job->spec.n) {
    evs.clear();
    job->channel.pop_all(evs, std::chrono::milliseconds(1000));
    for (auto& e : evs)
      if (e.finished) done.push_back(e);
  }
  return done;
}

TEST(WorkerImages, TwoImagesCountInPromptTokens) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("herd_test_worker_images_" + std::to_string(::getpid())))
                              .string();
  auto engine = open_engine(dir, false);
  Metrics metrics;
  EngineWorker worker(*engine, metrics, WorkerOptions{});
  auto job = std::make_shared<Job>();
  JobSpec& spec = job->spec;
  const Tokenizer& tok = engine->tokenizer();
  spec.prompt = engine->encode_prompt("Compare ", true);
  int64_t image_tokens = 0;
  for (auto [w, h, seed] : {std::tuple{640, 480, 1}, std::tuple{300, 800, 2}}) {
    auto t = preprocess_image(make_image(w, h, seed), 336, {});
    ASSERT_TRUE(t.is_ok());
    const ImageTokenShape shape{t->tile_rows, t->tile_cols, 144};
    ASSERT_TRUE(append_image_layout(tok, shape, spec.prompt).is_ok());
    image_tokens += image_layout_token_count(shape);
    spec.images.push_back(std::move(t).value());
  }
  EXPECT_EQ(image_tokens, 727 + 582);  // spec §5.1 examples: 480×640 and 300×800
  const std::vector<int32_t> text = tok.encode(" and say.", false);
  spec.prompt.insert(spec.prompt.end(), text.begin(), text.end());
  spec.max_tokens = 5;
  spec.n = 2;
  Status st;
  auto done = run_job(worker, job, &st);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(done.size(), 2u);
  for (const ChoiceEvent& e : done) {
    EXPECT_TRUE(e.error.is_ok()) << e.error.message();
    EXPECT_EQ(e.prompt_tokens, int64_t(spec.prompt.size()));
    EXPECT_EQ(e.prompt_tokens, 1 + 8 + image_tokens + int64_t(text.size()));
    EXPECT_EQ(e.generated, 5);
  }
  // A layout that does not match the image fails the job, and the worker keeps serving.
  auto bad = std::make_shared<Job>();
  bad->spec = spec;
  bad->spec.images.pop_back();
  run_job(worker, bad, &st);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find(
                "the tokens hold 2 images (<|image_start|> tokens) but 1 images were given"),
            std::string::npos)
      << st.message();
  auto again = std::make_shared<Job>();
  again->spec = spec;
  again->spec.n = 1;
  EXPECT_EQ(run_job(worker, again, &st).size(), 1u);
  EXPECT_TRUE(st.is_ok());
  worker.drain();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herd::server
