// `herd synth`: write a random-weight Llama 4 checkpoint (see convert/synth.h for the presets).
#include <fmt/format.h>

#include "herd/cli/command.h"
#include "herd/cli/flag_checks.h"
#include "herd/convert/synth.h"

namespace herd::cli {
namespace {

CommandRegistrar reg(
    "synth", "Write a random-weight Llama 4 checkpoint in the released layout",
    [](CLI::App& app, std::function<int()>& run) {
      auto opt = std::make_shared<SynthOptions>();
      auto chunk = std::make_shared<int64_t>(-1), layers = std::make_shared<int64_t>(-1),
           hidden = std::make_shared<int64_t>(-1), experts = std::make_shared<int64_t>(-1),
           vocab = std::make_shared<int64_t>(-1);
      auto floor = std::make_shared<double>(-1);
      app.add_option("--preset", opt->preset, "tiny, tiny-interleaved, small or bench")
          ->check(CLI::IsMember(synth_preset_names()))
          ->default_str("tiny");
      app.add_option("-o,--output", opt->out_dir, "Output directory")->required();
      app.add_option("--seed", opt->seed, "Random seed (same seed = same bytes)")
          ->check(uint64_flag());
      app.add_option("--shards", opt->shards,
                     "Number of safetensors shards (1 = model.safetensors; default per preset)")
          ->check(int_in(1, 99999));
      app.add_flag("--text-only", opt->text_only,
                   "Write a flat Llama4ForCausalLM checkpoint without vision tensors");
      auto vision = std::make_shared<bool>(false);
      auto vision_layers = std::make_shared<int64_t>(-1);
      app.add_flag("--vision", *vision,
                   "Write the vision tower and vision_config (the default; refused with "
                   "--text-only)");
      app.add_option("--vision-width", opt->vision_width,
                     "small (D 32, 2 layers), real (the released encoder: D 1408, 34 layers) or "
                     "a multiple of 88 (small with heads of the real head dim) -- image 336, "
                     "patch 14 and 144 tokens per tile are always real")
          ->default_str("small");
      app.add_option("--vision-layers", *vision_layers, "Override the vision encoder depth")
          ->check(int_in(1, 1 << 10));
      app.add_flag("--fp8", opt->fp8,
                   "Write routed experts as FP8 (compressed-tensors layout of the Maverick FP8 "
                   "release: per expert F8_E4M3 + per-channel weight_scale)");
      app.add_option("--tokenizer", opt->tokenizer_dir,
                     "Copy tokenizer files from this directory (default: byte-level fallback)")
          ->check(CLI::ExistingDirectory);
      // Ranges as config.json's (model/config_ranges.cc); the config check repeats them.
      app.add_option("--attention-chunk-size", *chunk, "Override attention_chunk_size")
          ->check(int_in(0, int64_t(1) << 31, "0 = no chunking"));
      app.add_option("--floor-scale", *floor, "Override floor_scale")
          ->check(real_in(0, 1e30, /*lo_open=*/true));
      app.add_option("--layers", *layers, "Override num_hidden_layers")->check(int_in(1, 1 << 16));
      app.add_option("--hidden", *hidden, "Override hidden_size (multiple of the head_dim)")
          ->check(int_in(1, 1 << 20));
      app.add_option("--experts", *experts, "Override num_local_experts")
          ->check(int_in(1, 1 << 16));
      app.add_option("--vocab", *vocab, "Override vocab_size (>= the tokenizer's size)")
          ->check(int_in(1, (int64_t(1) << 31) - 1));
      run = [=] {
        SynthOptions o = *opt;
        if (*vision && o.text_only)
          return report(Status::error("synth: --vision and --text-only contradict each other"));
        if (*vision_layers >= 0) o.vision_layers = *vision_layers;
        if (*chunk >= 0) o.attention_chunk_size = *chunk;
        if (*layers >= 0) o.layers = *layers;
        if (*hidden >= 0) o.hidden = *hidden;
        if (*experts >= 0) o.experts = *experts;
        if (*vocab >= 0) o.vocab = *vocab;
        if (*floor >= 0) o.floor_scale = *floor;
        o.progress = o.preset == "small" || o.preset == "bench" || o.vision_width == "real";
        Status s = synth_model(o);
        if (!s) return report(s);
        fmt::print(stderr, "synth: wrote {} (preset {}, seed {})\n", o.out_dir, o.preset, o.seed);
        return 0;
      };
    });

}  // namespace
}  // namespace herd::cli
