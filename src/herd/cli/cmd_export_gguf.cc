// `herd export-gguf`: write a checkpoint as a llama.cpp `llama4` GGUF (convert/gguf_export.h), the
// input of the llama.cpp conformance test (tools/llama-cpp-ref).
#include <fmt/format.h>

#include "herd/cli/command.h"
#include "herd/convert/gguf_export.h"

namespace herd::cli {
namespace {

CommandRegistrar reg(
    "export-gguf", "Write a checkpoint as a llama.cpp GGUF file (text model)",
    [](CLI::App& app, std::function<int()>& run) {
      auto opt = std::make_shared<GgufExportOptions>();
      auto dtype = std::make_shared<std::string>("f32");
      auto strict = std::make_shared<bool>(false);
      app.add_option("-m,--model", opt->model_dir, "Model directory")->required();
      app.add_option("-o,--output", opt->out_path, "Output .gguf file")->required();
      app.add_option("--dtype", *dtype, "Weight type: f32 (exact for BF16 weights), f16, bf16")
          ->check(CLI::IsMember({"f32", "f16", "bf16"}))
          ->default_str("f32");
      app.add_flag("--strict", *strict,
                   "Fail when llama.cpp cannot represent the config exactly (default: warn)");
      run = [=] {
        GgufExportOptions o = *opt;
        parse_gguf_dtype(*dtype, &o.dtype);
        auto r = export_gguf(o);
        if (!r.is_ok()) return report(r.status());
        for (const std::string& d : r->llama_cpp_differences)
          fmt::print(stderr, "export-gguf: warning: llama.cpp differs: {}\n", d);
        if (*strict && !r->llama_cpp_differences.empty())
          return report(
              make_error("{}: config not representable in llama.cpp (see warnings)", o.model_dir));
        fmt::print(stderr, "export-gguf: wrote {} ({} tensors, {:.1f} MiB of data)\n", o.out_path,
                   r->tensors, double(r->bytes) / (1 << 20));
        return 0;
      };
    });

}  // namespace
}  // namespace herd::cli
