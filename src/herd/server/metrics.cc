#include "herd/server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace herd::server {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  std::lock_guard lock(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard lock(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  cumulative += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cumulative,
                     name, sum_, name, count_);
}

namespace {
std::vector<double> seconds_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}
}  // namespace

Metrics::Metrics()
    : ttft(seconds_buckets()),
      inter_token(seconds_buckets()),
      request_latency(seconds_buckets()),
      batch_sequences({1, 2, 4, 8, 16, 32, 64, 128, 256}) {}

void Metrics::count_request(int http_status) {
  std::lock_guard lock(mu_);
  ++requests_[http_status];
}

std::string Metrics::render() const {
  std::string out;
  out += "# HELP herd_requests_total HTTP requests to the API by response status.\n";
  out += "# TYPE herd_requests_total counter\n";
  {
    std::lock_guard lock(mu_);
    for (const auto& [status, n] : requests_)
      out += fmt::format("herd_requests_total{{status=\"{}\"}} {}\n", status, n);
  }
  auto scalar = [&](const char* name, const char* type, const char* help, int64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
  };
  scalar("herd_prompt_tokens_total", "counter", "Prompt tokens of admitted sequences.",
         prompt_tokens.load());
  scalar("herd_generated_tokens_total", "counter", "Tokens generated.", generated_tokens.load());
  scalar("herd_prefix_cache_reused_tokens_total", "counter",
         "Prompt tokens taken from the prefix cache instead of evaluated.", reused_tokens.load());
  scalar("herd_active_sequences", "gauge", "Sequences in the running batch.", active_seqs.load());
  scalar("herd_queued_sequences", "gauge", "Sequences waiting to join the batch.",
         queued_seqs.load());
  scalar("herd_kv_pages_used", "gauge", "Global-layer KV pages in use.", kv_pages_used.load());
  scalar("herd_kv_pages_free", "gauge", "Global-layer KV pages free or cached.",
         kv_pages_free.load());
  scalar("herd_kv_resident_bytes", "gauge",
         "KV pool memory the OS holds: pools are reserved up front and touched lazily.",
         kv_resident_bytes.load());
  ttft.render(out, "herd_time_to_first_token_seconds",
              "From request arrival to the first generated token.");
  inter_token.render(out, "herd_inter_token_seconds", "Between consecutive generated tokens.");
  request_latency.render(out, "herd_request_seconds", "From arrival to the last token.");
  batch_sequences.render(out, "herd_batch_sequences",
                         "Sequences in one forward step's batch (decoding or prefilling).");
  return out;
}

}  // namespace herd::server
