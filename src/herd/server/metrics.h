// Prometheus text metrics for GET /metrics. Counters and gauges are atomics written by the HTTP
// threads (request outcomes) and the engine thread (tokens, sequences, KV pages); histograms
// take a small lock of their own, never one shared with request handling.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace herd::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // "<name>_bucket{le=...} ...", _sum and _count lines.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bound, plus +Inf last
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct Metrics {
  Metrics();
  void count_request(int http_status);
  std::string render() const;

  std::atomic<int64_t> prompt_tokens{0}, generated_tokens{0}, reused_tokens{0};
  std::atomic<int64_t> active_seqs{0}, queued_seqs{0};
  std::atomic<int64_t> kv_pages_used{0}, kv_pages_free{0};
  std::atomic<int64_t> kv_resident_bytes{0};
  Histogram ttft, inter_token, request_latency;
  // Sequences in each forward step's batch: _sum / _count is the mean batch occupancy, exact
  // whatever the scrape interval.
  Histogram batch_sequences;

 private:
  mutable std::mutex mu_;
  std::map<int, uint64_t> requests_;  // by HTTP status
};

}  // namespace herd::server
