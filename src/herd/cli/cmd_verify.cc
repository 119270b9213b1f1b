// `herd verify -m DIR`: every stored tensor scanned for NaN / infinity (io/tensor_scan.h), in
// parallel over the mmap. Prints one line per tensor that holds any (name, file, dtype, how
// many, the first element's index) and exits 1; a clean checkpoint prints "all finite". A summary
// line (bytes, seconds, GB/s) goes to stdout too.
#include <fmt/format.h>

#include <chrono>

#include "herd/base/thread_pool.h"
#include "herd/cli/command.h"
#include "herd/cli/flag_checks.h"
#include "herd/io/model_dir.h"
#include "herd/io/tensor_scan.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model;
  int threads = 0;
};

int run_verify(const Options& o) {
  if (Status s = check_model_dir(o.model); !s) return report(s);
  auto store = TensorStore::open_dir(o.model);
  if (!store) return report(store.status());
  ThreadPool pool(o.threads);
  const auto t0 = std::chrono::steady_clock::now();
  const ScanResult r = scan_nonfinite(**store, pool);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const NonFiniteTensor& b : r.bad)
    fmt::print(
        "tensor '{}' ({}, {} {}): {} non-finite value{} (NaN or Inf), first at element "
        "{}\n",
        b.name, b.file, dtype_name(b.dtype), shape_str(b.shape), b.count, b.count == 1 ? "" : "s",
        b.first_index);
  // The summary is part of the result (stdout), so a failing run's stderr is its one error line.
  fmt::print(
      "herd verify: {} tensors ({} of a float type), {:.2f} GB in {:.3f} s ({:.2f} GB/s, "
      "{} threads)\n",
      r.tensors, r.scanned_tensors, double(r.scanned_bytes) / 1e9, s,
      s > 0 ? double(r.scanned_bytes) / 1e9 / s : 0.0, pool.size());
  if (!r.bad.empty())
    return report(make_error("{}: {} tensor{} hold non-finite values (listed on stdout)", o.model,
                             r.bad.size(), r.bad.size() == 1 ? "" : "s"));
  fmt::print("all finite\n");
  return 0;
}

CommandRegistrar reg("verify", "Scan every tensor of a checkpoint for NaN / Inf",
                     [](CLI::App& app, std::function<int()>& run) {
                       auto o = std::make_shared<Options>();
                       app.add_option("-m,--model", o->model, "Model directory")->required();
                       app.add_option("-t,--threads", o->threads,
                                      "Threads (default: physical cores)")
                           ->check(threads_flag());
                       run = [o] { return run_verify(*o); };
                     });

}  // namespace
}  // namespace herd::cli
