// `herd quantize`: convert a checkpoint once into herd's run format and save it, so later loads
// map it with no conversion (format: docs/prequantized.md).
#include <fmt/format.h>

#include <chrono>

#include "herd/cli/command.h"
#include "herd/cli/flag_checks.h"
#include "herd/convert/prequant_save.h"
#include "herd/model/run_weights.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model, to = "int4", output;
  int threads = 0, shards = 0;
  bool quiet = false;
};

int run_quantize(const Options& o) {
  const auto mode = parse_quant_mode(o.to);
  if (!mode) return report(make_error("--to {}: expected bf16, int8, int4 or int4-all", o.to));
  // ggml's block formats are GGUF's: a pre-quantized copy of them is a GGUF file.
  if (*mode == QuantMode::kQ8_0 || *mode == QuantMode::kQ4_0)
    return report(make_error(
        "--to {}: herd's pre-quantized directories hold bf16, int8, int4 or int4-all; for ggml's "
        "{} blocks write a GGUF (herd export-gguf, then llama-quantize) or use --quant {} at load",
        o.to, o.to == "q8_0" ? "Q8_0" : "Q4_0", o.to));
  const auto t0 = std::chrono::steady_clock::now();
  auto model = load_model(o.model);
  if (!model) return report(model.status());
  if (is_herd_prequantized(model->config))
    return report(
        make_error("model {} is already pre-quantized ({}); quantize the original "
                   "checkpoint instead",
                   o.model, model->run_format));
  ThreadPool pool(o.threads);
  QuantOptions q;
  q.mode = *mode;
  q.progress = !o.quiet;
  if (Status s = prepare_run_weights(*model, q, pool); !s) return report(s);
  const auto t1 = std::chrono::steady_clock::now();
  if (Status s = save_prequantized(*model, o.output, o.shards); !s) return report(s);
  const auto t2 = std::chrono::steady_clock::now();
  if (!o.quiet)
    fmt::print(stderr, "quantize: wrote {} ({}; convert {:.2f} s, write {:.2f} s)\n", o.output,
               model->run_format, std::chrono::duration<double>(t1 - t0).count(),
               std::chrono::duration<double>(t2 - t1).count());
  return 0;
}

CommandRegistrar reg(
    "quantize", "Save a checkpoint in herd's run format (pre-quantized)",
    [](CLI::App& app, std::function<int()>& run) {
      auto o = std::make_shared<Options>();
      app.add_option("-m,--model", o->model, "Model directory")->required();
      app.add_option("--to", o->to, "bf16, int8, int4 or int4-all")->default_str("int4");
      app.add_option("-o,--output", o->output, "Output directory")->required();
      app.add_option("-t,--threads", o->threads, "Threads (default: physical cores)")
          ->check(threads_flag());
      app.add_option("--shards", o->shards, "Safetensors files to write (default: about 4 GB each)")
          ->check(int_in(1, 99999));
      app.add_flag("-q,--quiet", o->quiet, "No progress bar");
      run = [o] { return run_quantize(*o); };
    });

}  // namespace
}  // namespace herd::cli
