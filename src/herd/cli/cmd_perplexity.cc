// `herd perplexity`: perplexity of a text file, measured the way llama.cpp's llama-perplexity
// measures it, and the KL divergence / top-1 agreement / Δp of this run against base logits
// saved by an earlier one (llama-perplexity --kl-divergence-base).
//
// The text is tokenized once with BOS in front and cut into windows of --ctx tokens (the tail
// that does not fill a window is dropped). Each window runs on a fresh KV cache with its first
// token replaced by BOS, and only the second half is scored: the logits at positions
// ctx/2 .. ctx-2 predict the tokens after them, so every scored token has at least ctx/2 of
// context (llama.cpp perplexity.cpp, `first = n_ctx/2`).
//
// --save-base FILE writes the scored rows as log-probabilities; --kl-base FILE reads them back
// (same model vocabulary, text and --ctx, checked by a hash of the tokens) and compares.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "herd/base/mapped_file.h"
#include "herd/cli/command.h"
#include "herd/cli/engine_flags.h"
#include "herd/cli/flag_checks.h"
#include "herd/runtime/sequence.h"

namespace herd::cli {
namespace {

struct Options {
  std::string text_file, kl_base, save_base;
  EngineFlags engine;
  bool json = false;
};

// Base file: magic, then vocab, ctx, rows, token hash (int64 each), then rows × vocab float32
// log-probabilities, little-endian (the hosts herd runs on).
constexpr char kBaseMagic[8] = {'H', 'E', 'R', 'D', 'P', 'P', 'L', '1'};

struct BaseHeader {
  int64_t vocab = 0, ctx = 0, rows = 0;
  uint64_t hash = 0;
};

uint64_t fnv1a(const std::vector<int32_t>& tokens) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : tokens)
    for (int b = 0; b < 4; ++b) h = (h ^ ((uint32_t(t) >> (8 * b)) & 0xFF)) * 1099511628211ull;
  return h;
}

// log-softmax of one logits row, in double, written as float.
void log_softmax(const float* logits, int64_t V, float* out) {
  const double m = *std::max_element(logits, logits + V);
  double s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(double(logits[i]) - m);
  const double lse = m + std::log(s);
  for (int64_t i = 0; i < V; ++i) out[i] = float(double(logits[i]) - lse);
}

// Running mean and variance of one per-token measure; `ci95` is the half-width of the 95%
// confidence interval of the mean (normal approximation, as llama-perplexity reports).
struct Stat {
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  void add(double x) { sum += x, sum2 += x * x, ++n; }
  double mean() const { return n ? sum / double(n) : 0.0; }
  double stderr_() const {
    if (n < 2) return 0.0;
    const double var = std::max(0.0, sum2 / double(n) - mean() * mean());
    return std::sqrt(var / double(n - 1));
  }
  double ci95() const { return 1.96 * stderr_(); }
};

struct Base {
  std::ifstream in;
  BaseHeader h;
};

Status open_base(const std::string& path, Base& b) {
  b.in.open(path, std::ios::binary);
  if (!b.in) return make_error("{}: cannot open the --kl-base file", path);
  char magic[8] = {};
  b.in.read(magic, 8);
  b.in.read(reinterpret_cast<char*>(&b.h), sizeof(BaseHeader));
  if (!b.in || !std::equal(magic, magic + 8, kBaseMagic))
    return make_error("{}: not a herd perplexity base file (write one with --save-base)", path);
  return Status::ok();
}

int run_perplexity(Options o) {
  if (!o.kl_base.empty() && !o.save_base.empty())
    return report(Status::error("give at most one of --kl-base and --save-base"));
  auto text = read_text_file(o.text_file);
  if (!text) return report(text.status());
  const int64_t ctx = o.engine.ctx > 0 ? o.engine.ctx : 512;
  if (ctx < 4) return report(make_error("--ctx {}: must be at least 4", ctx));
  auto opt = o.engine.options();
  if (!opt) return report(opt.status());
  opt->sched.max_seqs = 1;
  opt->sched.context = ctx;
  auto engine = Engine::open(*opt);
  if (!engine) return report(engine.status());
  Engine& e = **engine;
  if (!e.has_tokenizer())
    return report(make_error("{}: perplexity needs the model's tokenizer", opt->model_dir));
  std::vector<int32_t> tokens{e.tokenizer().bos_id()};
  for (int32_t t : e.tokenizer().encode(*text, false)) tokens.push_back(t);
  const int64_t n_windows = int64_t(tokens.size()) / ctx;
  if (n_windows < 1)
    return report(make_error("{}: {} tokens, fewer than one window of --ctx {}", o.text_file,
                             tokens.size(), ctx));
  const int64_t V = e.decoder().vocab_size(), first = ctx / 2, scored = ctx - 1 - first;
  const uint64_t hash =
      fnv1a(std::vector<int32_t>(tokens.begin(), tokens.begin() + n_windows * ctx));
  const BaseHeader header{V, ctx, n_windows * scored, hash};

  Base base;
  if (!o.kl_base.empty()) {
    if (Status s = open_base(o.kl_base, base); !s) return report(s);
    const BaseHeader& b = base.h;
    if (b.vocab != V || b.ctx != ctx || b.rows != header.rows || b.hash != hash)
      return report(make_error(
          "{}: base was saved for vocab {}, --ctx {}, {} rows (tokens hash {:x}); this run has "
          "vocab {}, --ctx {}, {} rows (hash {:x}): same text, model vocabulary and --ctx needed",
          o.kl_base, b.vocab, b.ctx, b.rows, b.hash, V, ctx, header.rows, hash));
  }
  std::ofstream save;
  if (!o.save_base.empty()) {
    save.open(o.save_base, std::ios::binary | std::ios::trunc);
    if (!save) return report(make_error("{}: cannot create the --save-base file", o.save_base));
    save.write(kBaseMagic, 8);
    save.write(reinterpret_cast<const char*>(&header), sizeof(BaseHeader));
  }

  // The run's KV type: --kv-type, else f32 for the f32 reference and bf16 for the fast path
  // (the engine's own default).
  const KvType kv =
      opt->kv_type.value_or(opt->precision == Precision::kF32 ? KvType::kF32 : KvType::kBF16);
  Sequence seq(e.decoder(), o.engine.ubatch, kv);
  std::vector<int64_t> want;
  for (int64_t j = first; j < ctx - 1; ++j) want.push_back(j);
  std::vector<float> logits(size_t(scored * V)), lp(static_cast<size_t>(V)),
      blp(static_cast<size_t>(V));
  Stat nll, kl, top1, dp;
  double dp2 = 0;
  for (int64_t w = 0; w < n_windows; ++w) {
    std::vector<int32_t> win(tokens.begin() + w * ctx, tokens.begin() + (w + 1) * ctx);
    win[0] = e.tokenizer().bos_id();
    seq.reset();
    if (Status s = seq.append(win, want, logits.data()); !s) return report(s);
    for (int64_t i = 0; i < scored; ++i) {
      const int32_t next = win[size_t(first + i + 1)];
      log_softmax(&logits[size_t(i * V)], V, lp.data());
      nll.add(-double(lp[size_t(next)]));
      if (save.is_open()) save.write(reinterpret_cast<const char*>(lp.data()), V * 4);
      if (!base.in.is_open()) continue;
      base.in.read(reinterpret_cast<char*>(blp.data()), V * 4);
      if (!base.in) return report(make_error("{}: file ends early", o.kl_base));
      double k = 0;
      for (int64_t t = 0; t < V; ++t)
        k += std::exp(double(blp[size_t(t)])) * (double(blp[size_t(t)]) - double(lp[size_t(t)]));
      kl.add(std::max(k, 0.0));
      const auto arg = [&](const std::vector<float>& r) {
        return std::max_element(r.begin(), r.end()) - r.begin();
      };
      top1.add(arg(lp) == arg(blp) ? 1.0 : 0.0);
      const double d = std::exp(double(lp[size_t(next)])) - std::exp(double(blp[size_t(next)]));
      dp.add(d);
      dp2 += d * d;
    }
    if (!o.json)
      std::fprintf(stderr, "\rherd perplexity: window %lld/%lld, ppl %.4f", (long long)(w + 1),
                   (long long)n_windows, std::exp(nll.mean()));
  }
  if (!o.json) std::fprintf(stderr, "\n");
  if (save.is_open() && !save.good()) return report(make_error("{}: write failed", o.save_base));
  // PPL = exp(mean NLL); its error is the NLL's standard error scaled by PPL (llama.cpp).
  const double ppl = std::exp(nll.mean()), ppl_err = ppl * nll.stderr_();
  const bool has_base = base.in.is_open();
  const double rms_dp = dp.n ? std::sqrt(dp2 / double(dp.n)) : 0.0;
  if (o.json) {
    std::printf(
        "{\"ppl\": %.6f, \"ppl_err\": %.6f, \"tokens\": %lld, \"windows\": %lld, \"ctx\": %lld",
        ppl, ppl_err, (long long)nll.n, (long long)n_windows, (long long)ctx);
    if (has_base)
      std::printf(
          ", \"kl\": %.6g, \"kl_ci95\": %.6g, \"top1\": %.6f, \"top1_ci95\": %.6f, "
          "\"dp\": %.6g, \"dp_ci95\": %.6g, \"rms_dp\": %.6g",
          kl.mean(), kl.ci95(), top1.mean(), top1.ci95(), dp.mean(), dp.ci95(), rms_dp);
    std::printf("}\n");
    return 0;
  }
  std::printf("%lld tokens scored in %lld windows of %lld\n", (long long)nll.n,
              (long long)n_windows, (long long)ctx);
  std::printf("PPL = %.4f +/- %.5f\n", ppl, ppl_err);
  if (has_base) {
    std::printf("mean KL = %.6f +/- %.6f (95%%)\n", kl.mean(), kl.ci95());
    std::printf("same top-1 = %.3f%% +/- %.3f%% (95%%)\n", 100 * top1.mean(), 100 * top1.ci95());
    std::printf("mean dp = %.4f%% +/- %.4f%% (95%%), RMS dp = %.4f%%\n", 100 * dp.mean(),
                100 * dp.ci95(), 100 * rms_dp);
  }
  return 0;
}

CommandRegistrar reg("perplexity",
                     "Perplexity of a text file; KL / top-1 / dp against saved base logits",
                     [](CLI::App& app, std::function<int()>& run) {
                       auto o = std::make_shared<Options>();
                       o->engine.add_to(app);  // its --ctx is the window size here (default 512)
                       app.add_option("-f,--file", o->text_file, "Text file")->required();
                       app.add_option("--kl-base", o->kl_base,
                                      "Compare with base log-probabilities (a file)");
                       app.add_option("--save-base", o->save_base,
                                      "Save this run's log-probabilities as a base");
                       app.add_flag("--json", o->json, "Print one JSON line");
                       run = [o] { return run_perplexity(*o); };
                     });

}  // namespace
}  // namespace herd::cli
