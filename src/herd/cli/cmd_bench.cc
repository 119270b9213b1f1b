// `herd bench`: prefill and decode speed the way llama-bench measures them (pp: P random tokens
// on an empty cache; tg: N single-token steps from an empty cache), medians of repeats, plus
// load time, peak RSS and the weight bytes each decoded token reads. With -d D (llama-bench's
// depth) a context of D random tokens is prefilled once (timed: the long-prefill speed), and pp
// and tg then run on top of it, reusing its pages through the prefix cache.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "herd/base/progress.h"
#include "herd/base/stage_profile.h"
#include "herd/cli/command.h"
#include "herd/cli/engine_flags.h"
#include "herd/cli/flag_checks.h"
#include "herd/model/run_weights.h"
#include "herd/model/text.h"
#include "herd/model/vision.h"
#include "herd/model/weight_bytes.h"
#include "herd/ops/kv_quant.h"
#include "herd/runtime/bandwidth_probe.h"
#include "herd/runtime/sampler.h"

namespace herd::cli {
namespace {

struct Options {
  EngineFlags engine;
  // Decode samples greedily unless these are given (llama-bench does not sample; a user's
  // generation with a temperature does, and at Llama 4's vocabulary that is measurable).
  SamplingFlags sampling;
  int64_t prompt_tokens = 512, gen_tokens = 128, depth = 0;
  bool ubatch_given = false;
  int repeats = 3;
  bool json = false, probe = false, profile = false;
  int64_t image_tiles = 0;  // > 0: time the vision encoder instead (run_image_bench)
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int64_t peak_rss_bytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;
}

// --profile: wall time per forward stage (base/stage_profile.h), per step, for the prefill and
// decode runs side by side. Stages nest only as ffn ⊃ ffn_products; "other" is the step's time
// outside every stage (batch checks, the layer loop, traces).
void print_profile(FILE* out, const StageTotals& pp, const StageTotals& tg) {
  auto col = [&](const StageTotals& t, Stage s) {
    const int64_t steps = t.calls[size_t(Stage::kForward)];
    if (steps == 0) return std::fprintf(out, "  %12s %6s", "-", "-"), void();
    const double total = double(t.ns[size_t(Stage::kForward)]);
    double ns = double(t.ns[size_t(s)]);
    if (s == Stage::kCount) {  // other
      ns = total;
      for (size_t i = 1; i < kStageCount; ++i)
        if (Stage(i) != Stage::kMoeProducts) ns -= double(t.ns[i]);
    }
    std::fprintf(out, "  %12.3f %5.1f%%", ns / 1e6 / double(steps),
                 total > 0 ? 100 * ns / total : 0);
  };
  std::fprintf(out,
               "profile: wall ms per forward step and share of it\n%-16s  %12s %6s  %12s %6s\n",
               "stage", "prefill ms", "", "decode ms", "");
  for (size_t i = 0; i <= kStageCount; ++i) {
    const Stage s = Stage(i);
    std::fprintf(out, "%-16s",
                 i == kStageCount           ? "other"
                 : s == Stage::kMoeProducts ? "  ffn_products"
                                            : stage_name(s));
    col(pp, s);
    col(tg, s);
    std::fprintf(out, "\n");
  }
}

int run_probe(const Options& o) {
  ThreadPool pool(o.engine.threads);
  const double gbs = probe_read_bandwidth(pool);
  if (o.json)
    std::printf("{\"bandwidth_gb_s\": %.3f, \"threads\": %d, \"bytes\": %zu, \"passes\": 5}\n", gbs,
                pool.size(), size_t(1) << 30);
  else
    std::printf("read bandwidth %.2f GB/s (%d threads, 1 GiB, best of 5)\n", gbs, pool.size());
  return 0;
}

// Vision encoder time per tile: N random normalised tiles encoded as one image would be (all
// tiles in one call), one warm-up, median of the repeats.
int run_image_bench(const Options& o) {
  auto precision = parse_precision(o.engine.precision);
  if (!precision) return report(precision.status());
  const auto t0 = std::chrono::steady_clock::now();
  auto model = load_model(o.engine.model);
  if (!model) return report(model.status());
  ThreadPool pool(o.engine.threads);
  auto enc = VisionEncoder::create(*model, pool, *precision);
  if (!enc) return report(enc.status());
  const double load_s = seconds_since(t0);
  const Llama4VisionConfig& v = *model->config.vision;
  std::vector<float> px(size_t(o.image_tiles * v.num_channels * v.image_size * v.image_size));
  Xoshiro256 rng(1234);
  for (float& x : px) x = float(double(rng.next() >> 11) / double(1ull << 53)) * 2.0f - 1.0f;
  std::vector<float> out(size_t(o.image_tiles * (*enc)->tokens_per_tile() * (*enc)->output_dim()));
  std::vector<double> per_tile;
  for (int r = 0; r <= o.repeats; ++r) {
    const auto t1 = std::chrono::steady_clock::now();
    if (Status s = (*enc)->encode(px.data(), o.image_tiles, out.data()); !s) return report(s);
    if (r > 0) per_tile.push_back(seconds_since(t1) / double(o.image_tiles));
  }
  std::printf(
      "model %s  vision D %lld  layers %lld  precision %s  threads %d\n"
      "load          %.2f s\n"
      "image encode  %.3f s per tile (%lld tiles per call, median of %d)\n",
      o.engine.model.c_str(), (long long)v.hidden_size, (long long)v.num_hidden_layers,
      o.engine.precision.c_str(), pool.size(), load_s, median(per_tile), (long long)o.image_tiles,
      o.repeats);
  return 0;
}

int run_bench(const Options& o) {
  if (o.probe) return run_probe(o);
  if (o.image_tiles > 0) {
    if (o.engine.model.empty()) return report(Status::error("--image-tiles needs --model"));
    return run_image_bench(o);
  }
  if (o.engine.model.empty()) return report(Status::error("--model is required (or --probe)"));
  auto opt = o.engine.options();
  if (!opt) return report(opt.status());
  opt->tokenizer = false;
  opt->progress = !o.json;
  // One prompt of P tokens in one slice (as llama-bench's pp) unless --ubatch says otherwise, at
  // most kMaxSlice: activation memory grows with the slice, and a long prompt goes in slices.
  // The --depth context takes slices of its own length too: with -p 0 it went one token a step.
  constexpr int64_t kMaxSlice = 4096;
  if (!o.ubatch_given)
    opt->sched.step_tokens = std::max<int64_t>(
        {std::min(std::max(o.prompt_tokens, o.depth), kMaxSlice), opt->sched.max_seqs, 1});
  // --ctx bounds the pools; otherwise the model's limit (pages are reserved, touched when used).
  opt->sched.context = o.engine.ctx;
  // Load time includes the conversion to the run format (none for a pre-quantized model).
  auto engine = Engine::open(*opt);
  if (!engine) return report(engine.status());
  Engine& e = **engine;
  const double load_s = e.load_seconds();
  const LoadedModel& model = e.model();
  const Precision precision = e.decoder().precision();
  // What actually runs: a pre-quantized model keeps its own format ("fp8" for FP8 experts).
  const std::string quant_used = precision == Precision::kAuto ? model.run_format : o.engine.quant;
  const int64_t V = e.decoder().vocab_size(), N = opt->sched.max_seqs;
  Scheduler& sched = e.scheduler();
  Xoshiro256 rng(1234);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = int32_t(rng.next() % uint64_t(V));
    return t;
  };
  // The depth context, prefilled once: it also serves as the warm-up round.
  const std::vector<int32_t> base = random_tokens(o.depth);
  double depth_tok_s = 0;
  if (o.depth > 0) {
    Request req;
    req.prompt = base;
    req.logits_positions = {o.depth - 1};
    Progress bar("prefill depth", uint64_t(o.depth), !o.json);
    bar.show_rate("tok");
    int64_t shown = 0;
    req.on_prefill = [&](int64_t done, int64_t) {
      bar.add(uint64_t(done - shown));
      shown = done;
    };
    auto t1 = std::chrono::steady_clock::now();
    auto done = e.run(std::move(req));
    if (!done) return report(done.status());
    depth_tok_s = double(o.depth) / seconds_since(t1);
  }
  // A prompt of n new tokens on top of the depth context (reused from the prefix cache).
  auto at_depth = [&](int64_t n) {
    std::vector<int32_t> t = base;
    const std::vector<int32_t> more = random_tokens(n);
    t.insert(t.end(), more.begin(), more.end());
    return t;
  };
  std::vector<double> pp, tg;
  StageTotals pp_stages, tg_stages;
  if (o.profile) stage_profile_enable(true);
  // One warm-up round of each (page faults of the mmap, caches), then the measured repeats; the
  // depth prefill above already warmed everything up.
  for (int r = o.depth > 0 ? 1 : 0; r <= o.repeats; ++r) {
    if (o.prompt_tokens > 0) {
      Request req;
      req.prompt = at_depth(o.prompt_tokens);
      req.logits_positions = {int64_t(req.prompt.size()) - 1};
      req.reuse_prefix = o.depth > 0;
      req.cache_prompt = false;  // random tokens: later rounds reuse these pages, resident
      auto t1 = std::chrono::steady_clock::now();
      auto done = e.run(std::move(req));
      if (!done) return report(done.status());
      // Only whole pages of the depth are reused (a partial last page is evaluated again): count
      // what was evaluated.
      const int64_t evaluated = done->prompt_tokens - done->reused_tokens;
      if (r > 0) pp.push_back(double(evaluated) / seconds_since(t1));
      const StageTotals st = stage_profile_take();
      if (r > 0) pp_stages.add(st);
    }
    if (o.gen_tokens > 0) {
      // N sequences, each from an empty cache: one token of prompt, then gen_tokens - 1 decode
      // steps, all N stepped together (llama-bench's tg is N = 1). Every step is one forward.
      int64_t evaluated = 0;
      for (int64_t i = 0; i < N; ++i) {
        Request req;
        req.prompt = at_depth(1);
        req.max_tokens = o.gen_tokens;
        o.sampling.apply(req.sampling);
        req.sampling.seed += uint64_t(i);  // each sequence its own draws
        req.reuse_prefix = o.depth > 0;
        req.cache_prompt = false;
        req.on_finish = [&](const Completion& c) {
          evaluated += c.prompt_tokens - c.reused_tokens + c.decode_steps;
          if (c.reason == FinishReason::kError)
            std::fprintf(stderr, "herd: error: %s\n", c.error.message().c_str());
        };
        if (auto id = sched.submit(std::move(req)); !id) return report(id.status());
      }
      auto t1 = std::chrono::steady_clock::now();
      if (Status s = sched.run_until_idle(); !s) return report(s);
      if (r > 0) tg.push_back(double(evaluated) / seconds_since(t1));
      const StageTotals st = stage_profile_take();
      if (r > 0) tg_stages.add(st);
    }
  }
  const double prefill = median(pp), decode = median(tg);
  const int64_t bpt = decode_bytes_per_token(model);
  if (o.json) {
    std::printf(
        "{\"model\": \"%s\", \"quant\": \"%s\", \"precision\": \"%s\", \"threads\": %d, "
        "\"prompt_tokens\": %lld, \"gen_tokens\": %lld, \"repeats\": %d, \"prefill_tok_s\": %.4f, "
        "\"decode_tok_s\": %.4f, \"peak_rss_bytes\": %lld, \"load_s\": %.4f, "
        "\"bytes_per_token\": %lld, \"parallel\": %lld, \"aggregate_decode_tok_s\": %.4f, "
        "\"kv_type\": \"%s\", \"depth\": %lld, \"depth_prefill_tok_s\": %.4f}\n",
        o.engine.model.c_str(), quant_used.c_str(), o.engine.precision.c_str(), e.pool().size(),
        (long long)o.prompt_tokens, (long long)o.gen_tokens, o.repeats, prefill,
        N == 1 ? decode : decode / double(N), (long long)peak_rss_bytes(), load_s, (long long)bpt,
        (long long)N, decode, kv_type_name(sched.kv_spec().global.type), (long long)o.depth,
        depth_tok_s);
  } else {
    std::printf("model %s  quant %s  precision %s  threads %d  parallel %lld  kv %s\n",
                o.engine.model.c_str(), quant_used.c_str(), o.engine.precision.c_str(),
                e.pool().size(), (long long)N, kv_type_name(sched.kv_spec().global.type));
    std::printf("load          %.2f s\n", load_s);
    if (o.depth > 0)
      std::printf("depth %lld     prefilled at %.2f tok/s (once); pp and tg below run on it\n",
                  (long long)o.depth, depth_tok_s);
    std::printf("prefill pp%-4lld %.2f tok/s (median of %d)\n", (long long)o.prompt_tokens, prefill,
                o.repeats);
    std::printf("decode  tg%-4lld %.2f tok/s aggregate over %lld sequences (median of %d)\n",
                (long long)o.gen_tokens, decode, (long long)N, o.repeats);
    // Sequences stepped together share the weights they read, so bytes × tokens/s is a
    // bandwidth only for one sequence.
    if (N == 1)
      std::printf("bytes/token   %.1f MB -> %.2f GB/s effective (one sequence)\n",
                  double(bpt) / 1e6, double(bpt) * decode / 1e9);
    else
      std::printf("bytes/token   %.1f MB (one sequence's; GB/s is shown for --parallel 1)\n",
                  double(bpt) / 1e6);
    std::printf("peak RSS      %.1f MB\n", double(peak_rss_bytes()) / 1e6);
  }
  if (o.profile) {  // stderr beside --json, so stdout stays one JSON object
    stage_profile_enable(false);
    print_profile(o.json ? stderr : stdout, pp_stages, tg_stages);
  }
  return 0;
}

CommandRegistrar reg(
    "bench", "Measure prefill and decode speed", [](CLI::App& app, std::function<int()>& run) {
      auto o = std::make_shared<Options>();
      o->engine.add_to(app, /*model_required=*/false);
      o->sampling.add_to(app);
      app.add_flag("--probe", o->probe, "Measure the memory read bandwidth instead (roofline)");
      app.add_option("-p,--prompt-tokens", o->prompt_tokens, "Prefill test length (0 = skip)")
          ->check(int_in(0, 1 << 20, "0 = skip"));
      app.add_option("-n,--gen-tokens", o->gen_tokens, "Decode test length (0 = skip)")
          ->check(int_in(0, 1 << 20, "0 = skip"));
      app.add_option("-r,--repeats", o->repeats, "Measured repetitions")->check(int_in(1, 10000));
      app.add_option("-d,--depth", o->depth,
                     "Context tokens prefilled once before pp and tg (llama-bench -d)")
          ->check(int_in(0, kMaxTokensFlag, "0 = none"));
      app.add_flag("--json", o->json, "Print one JSON object");
      app.add_flag("--profile", o->profile,
                   "Also print the wall time of each forward stage (prefill and decode steps)");
      app.add_option("--image-tiles", o->image_tiles,
                     "Time the vision encoder on N random image tiles instead (seconds per tile)")
          ->check(int_in(0, 1024, "0 = off"));
      run = [o, &app] {
        o->ubatch_given = app.count("--ubatch") > 0;
        return run_bench(*o);
      };
    });

}  // namespace
}  // namespace herd::cli
