// `herd bench`: prefill and decode speed the way llama-bench measures them (pp: P random tokens
// on an empty cache; tg: N single-token steps from an empty cache), medians of repeats, plus
// load time, peak RSS and the weight bytes each decoded token reads.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "herd/cli/command.h"
#include "herd/cli/flag_checks.h"
#include "herd/model/run_weights.h"
#include "herd/model/text.h"
#include "herd/model/weight_bytes.h"
#include "herd/runtime/sequence.h"
#include "herd/runtime/sampler.h"
#include "herd/runtime/bandwidth_probe.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model, quant = "bf16", precision = "auto";
  int64_t prompt_tokens = 512, gen_tokens = 128;
  int repeats = 3, threads = 0;
  bool json = false, probe = false;
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

int run_probe(const Options& o) {
  ThreadPool pool(o.threads);
  const double gbs = probe_read_bandwidth(pool);
  if (o.json)
    std::printf("{\"bandwidth_gb_s\": %.3f, \"threads\": %d, \"bytes\": %zu, \"passes\": 5}\n", gbs,
                pool.size(), size_t(1) << 30);
  else
    std::printf("read bandwidth %.2f GB/s (%d threads, 1 GiB, best of 5)\n", gbs, pool.size());
  return 0;
}

int run_bench(const Options& o) {
  if (o.probe) return run_probe(o);
  if (o.model.empty()) return report(Status::error("--model is required (or --probe)"));
  if (o.precision != "f32" && o.precision != "auto")
    return report(make_error("--precision {}: expected auto or f32", o.precision));
  const auto quant = parse_quant_mode(o.quant);
  if (!quant)
    return report(make_error("--quant {}: expected bf16, int8, int4 or int4-all", o.quant));
  auto t0 = std::chrono::steady_clock::now();
  auto model = load_model(o.model);
  if (!model) return report(model.status());
  ThreadPool pool(o.threads);
  // Load time includes the conversion to the run format (none for a pre-quantized model).
  const Precision precision = o.precision == "auto" ? Precision::kAuto : Precision::kF32;
  if (precision == Precision::kAuto) {
    QuantOptions q;
    q.mode = *quant;
    q.progress = !o.json;
    if (Status s = prepare_run_weights(*model, q, pool); !s) return report(s);
  } else if (Status s = prepare_reference_weights(*model, pool); !s) {
    return report(s);
  }
  const double load_s = seconds_since(t0);
  // What actually runs: a pre-quantized model keeps its own format ("fp8" for FP8 experts).
  const std::string quant_used = precision == Precision::kAuto ? model->run_format : o.quant;
  TextDecoder dec(*model, pool, precision);
  const int64_t V = dec.vocab_size();
  Xoshiro256 rng(1234);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = int32_t(rng.next() % uint64_t(V));
    return t;
  };
  std::vector<float> logits(static_cast<size_t>(V));
  std::vector<double> pp, tg;
  // One warm-up round of each (page faults of the mmap, caches), then the measured repeats.
  for (int r = 0; r <= o.repeats; ++r) {
    if (o.prompt_tokens > 0) {
      Sequence seq(dec, std::max<int64_t>(o.prompt_tokens, 1));
      auto toks = random_tokens(o.prompt_tokens);
      auto t1 = std::chrono::steady_clock::now();
      Status s = seq.append_last(toks, logits.data());
      if (!s) return report(s);
      if (r > 0) pp.push_back(double(o.prompt_tokens) / seconds_since(t1));
    }
    if (o.gen_tokens > 0) {
      Sequence seq(dec, 1);
      auto toks = random_tokens(o.gen_tokens);
      auto t1 = std::chrono::steady_clock::now();
      for (int32_t tok : toks) {
        Status s = seq.append_last({&tok, 1}, logits.data());
        if (!s) return report(s);
      }
      if (r > 0) tg.push_back(double(o.gen_tokens) / seconds_since(t1));
    }
  }
  const double prefill = median(pp), decode = median(tg);
  const int64_t bpt = decode_bytes_per_token(*model);
  if (o.json) {
    std::printf(
        "{\"model\": \"%s\", \"quant\": \"%s\", \"precision\": \"%s\", \"threads\": %d, "
        "\"prompt_tokens\": %lld, \"gen_tokens\": %lld, \"repeats\": %d, \"prefill_tok_s\": %.4f, "
        "\"decode_tok_s\": %.4f, \"peak_rss_bytes\": %lld, \"load_s\": %.4f, "
        "\"bytes_per_token\": %lld}\n",
        o.model.c_str(), quant_used.c_str(), o.precision.c_str(), pool.size(),
        (long long)o.prompt_tokens, (long long)o.gen_tokens, o.repeats, prefill, decode,
        (long long)peak_rss_bytes(), load_s, (long long)bpt);
  } else {
    std::printf("model %s  quant %s  precision %s  threads %d\n", o.model.c_str(), quant_used.c_str(),
                o.precision.c_str(), pool.size());
    std::printf("load          %.2f s\n", load_s);
    std::printf("prefill pp%-4lld %.2f tok/s (median of %d)\n", (long long)o.prompt_tokens,
                prefill, o.repeats);
    std::printf("decode  tg%-4lld %.2f tok/s (median of %d)\n", (long long)o.gen_tokens, decode,
                o.repeats);
    std::printf("bytes/token   %.1f MB -> %.2f GB/s effective\n", double(bpt) / 1e6,
                double(bpt) * decode / 1e9);
    std::printf("peak RSS      %.1f MB\n", double(peak_rss_bytes()) / 1e6);
  }
  return 0;
}

CommandRegistrar reg("bench", "Measure prefill and decode speed", [](CLI::App& app,
                                                                    std::function<int()>& run) {
  auto o = std::make_shared<Options>();
  app.add_option("-m,--model", o->model, "Model directory");
  app.add_flag("--probe", o->probe, "Measure the memory read bandwidth instead (roofline)");
  app.add_option("-p,--prompt-tokens", o->prompt_tokens, "Prefill test length (0 = skip)")
      ->check(int_in(0, 1 << 20, "0 = skip"));
  app.add_option("-n,--gen-tokens", o->gen_tokens, "Decode test length (0 = skip)")
      ->check(int_in(0, 1 << 20, "0 = skip"));
  app.add_option("-r,--repeats", o->repeats, "Measured repetitions")->check(int_in(1, 10000));
  app.add_option("-t,--threads", o->threads, "Threads (default: physical cores)")
      ->check(threads_flag());
  app.add_option("--precision", o->precision, "auto or f32")
      ->check(CLI::IsMember({"auto", "f32"}));
  app.add_option("--quant", o->quant,
                 "Run format with --precision auto: bf16, int8, int4, int4-all")
      ->check(CLI::IsMember({"bf16", "int8", "int4", "int4-all"}));
  app.add_flag("--json", o->json, "Print one JSON object");
  run = [o] { return run_bench(*o); };
});

}  // namespace
}  // namespace herd::cli
