// `herd quality`: how far the fast path (--precision auto, a --quant run format) is from the f32
// reference on the same weights, over many positions: top-1 agreement, mean KL divergence
// KL(ref || fast) and the median top-1/top-2 logit margin of the reference (how hard the
// agreement test is). Both decoders share one LoadedModel (stored + run weights).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "herd/cli/command.h"
#include "herd/cli/engine_flags.h"
#include "herd/cli/flag_checks.h"
#include "herd/runtime/sampler.h"
#include "herd/runtime/sequence.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model, quant = "int8";
  int64_t positions = 1000, ubatch = 256;
  int threads = 0;
  uint64_t seed = 1;
  bool json = false;
};

struct Metrics {
  int64_t n = 0, agree = 0;
  double kl_sum = 0;
  std::vector<float> margins;
};

// KL(p || q) of the softmaxes of two logit rows, in double.
double kl_divergence(const float* p_logits, const float* q_logits, int64_t V) {
  const double pm = *std::max_element(p_logits, p_logits + V);
  const double qm = *std::max_element(q_logits, q_logits + V);
  double ps = 0, qs = 0;
  for (int64_t i = 0; i < V; ++i) {
    ps += std::exp(double(p_logits[i]) - pm);
    qs += std::exp(double(q_logits[i]) - qm);
  }
  const double lp = std::log(ps), lq = std::log(qs);
  double kl = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double a = double(p_logits[i]) - pm - lp, b = double(q_logits[i]) - qm - lq;
    kl += std::exp(a) * (a - b);
  }
  return std::max(kl, 0.0);
}

int run_quality(const Options& o) {
  auto q = parse_quant(o.quant);
  if (!q) return report(q.status());
  EngineOptions eo;
  eo.model_dir = o.model;
  eo.threads = o.threads;
  eo.quant = *q;
  eo.tokenizer = false;
  eo.with_reference = true;
  eo.sched.max_seqs = 1;
  auto engine = Engine::open(eo);
  if (!engine) return report(engine.status());
  const LoadedModel* model = &(*engine)->model();
  TextDecoder &ref = *(*engine)->reference(), &fast = (*engine)->decoder();
  const int64_t V = ref.vocab_size(), n = o.positions;
  Xoshiro256 rng(o.seed);
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = int32_t(rng.next() % uint64_t(V));
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
  std::vector<float> a(size_t(n * V)), b(size_t(n * V));
  // Router choices of both paths: a flipped top-1 expert is the main way small numeric
  // differences become large ones on random-weight models.
  std::vector<float> ea, eb;
  auto expert_trace = [](std::vector<float>& out) {
    return TraceFn([&out](std::string_view name, int, const float* d, int64_t rows, int64_t) {
      if (name == "expert") out.insert(out.end(), d, d + rows);
    });
  };
  Sequence sa(ref, o.ubatch), sb(fast, o.ubatch);
  if (Status s = sa.append(tokens, all, a.data(), expert_trace(ea)); !s) return report(s);
  if (Status s = sb.append(tokens, all, b.data(), expert_trace(eb)); !s) return report(s);
  int64_t same_route = 0;
  for (size_t i = 0; i < std::min(ea.size(), eb.size()); ++i) same_route += ea[i] == eb[i];
  const double route = ea.empty() ? 1.0 : double(same_route) / double(ea.size());
  Metrics m;
  for (int64_t i = 0; i < n; ++i) {
    const float* ra = &a[size_t(i * V)];
    const float* rb = &b[size_t(i * V)];
    const int64_t ta = std::max_element(ra, ra + V) - ra, tb = std::max_element(rb, rb + V) - rb;
    m.agree += ta == tb;
    m.kl_sum += kl_divergence(ra, rb, V);
    float second = -INFINITY;
    for (int64_t j = 0; j < V; ++j)
      if (j != ta) second = std::max(second, ra[j]);
    m.margins.push_back(ra[ta] - second);
    ++m.n;
  }
  std::sort(m.margins.begin(), m.margins.end());
  const double top1 = double(m.agree) / double(m.n), kl = m.kl_sum / double(m.n);
  const double margin = m.margins[m.margins.size() / 2];
  if (o.json)
    std::printf(
        "{\"quant\": \"%s\", \"positions\": %lld, \"top1_agreement\": %.6f, "
        "\"mean_kl\": %.6g, \"median_margin\": %.6f, \"router_agreement\": %.6f}\n",
        model->run_format.c_str(), (long long)m.n, top1, kl, margin, route);
  else
    std::printf(
        "%s vs f32: %lld positions, top-1 agreement %.2f%%, mean KL %.3g, median "
        "top-1/top-2 margin %.3f, same expert chosen %.2f%%\n",
        model->run_format.c_str(), (long long)m.n, 100 * top1, kl, margin, 100 * route);
  return 0;
}

CommandRegistrar reg(
    "quality", "Compare the fast path with the f32 reference (top-1, KL)",
    [](CLI::App& app, std::function<int()>& run) {
      auto o = std::make_shared<Options>();
      app.add_option("-m,--model", o->model, "Model directory")->required();
      app.add_option("--quant", o->quant, std::string(kQuantModeList));
      app.add_option("-n,--positions", o->positions, "Positions compared")
          ->check(int_in(1, 1 << 20));
      app.add_option("-t,--threads", o->threads, "Threads")->check(threads_flag());
      app.add_option("--seed", o->seed, "Seed of the random token sequence")->check(uint64_flag());
      app.add_flag("--json", o->json, "Print one JSON object");
      run = [o] { return run_quality(*o); };
    });

}  // namespace
}  // namespace herd::cli
