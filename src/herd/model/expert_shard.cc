#include "herd/model/expert_shard.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace herd {

int64_t held_experts(const LoadedModel& m) {
  return m.experts.count < 0 ? m.config.text.num_local_experts : m.experts.count;
}

bool holds_expert(const LoadedModel& m, int64_t e) {
  return e >= m.experts.first && e < m.experts.first + held_experts(m);
}

Status narrow_experts(LoadedModel& m, ExpertShare share) {
  const Llama4TextConfig& t = m.config.text;
  const int64_t E = t.num_local_experts, H = t.hidden_size, I = t.intermediate_size;
  if (m.experts.count >= 0) return make_error("model {}: experts are already narrowed", m.dir);
  if (share.first < 0 || share.count < 1 || share.first + share.count > E)
    return make_error("model {}: expert share {}+{} is outside its {} experts", m.dir, share.first,
                      share.count, E);
  for (size_t i = 0; i < m.text.layers.size(); ++i) {
    if (!t.layer_kind(int64_t(i)).moe) continue;
    // As stored: input-major [E*H, 2I] / [E*I, H] (empty for per-expert FP8 checkpoints, whose
    // loader filters by holds_expert).
    LayerWeights& s = m.text.layers[i];
    if (m.gguf) {
      // GGUF (model/gguf_load.h): out-major per expert, gate [E*I, H], up [E*I, H] and down
      // [E*H, I]; the run weights are the same views, narrowed alike.
      for (LayerWeights* l : {&s, &m.run.layers[i]}) {
        l->experts_gate_up = l->experts_gate_up.row_slice(share.first * I, share.count * I);
        l->experts_up = l->experts_up.row_slice(share.first * I, share.count * I);
        l->experts_down = l->experts_down.row_slice(share.first * H, share.count * H);
      }
      continue;
    }
    if (s.experts_gate_up.data)
      s.experts_gate_up = s.experts_gate_up.row_slice(share.first * H, share.count * H);
    if (s.experts_down.data)
      s.experts_down = s.experts_down.row_slice(share.first * I, share.count * I);
    if (!m.has_run) continue;
    // Run format (pre-quantized): [E*2I, H] / [E*H, I], experts start on a tile.
    LayerWeights& r = m.run.layers[i];
    r.experts_gate_up = r.experts_gate_up.row_slice(share.first * 2 * I, share.count * 2 * I);
    r.experts_down = r.experts_down.row_slice(share.first * H, share.count * H);
  }
  m.experts = share;
  return Status::ok();
}

int64_t resident_weight_bytes(const LoadedModel& m) {
  int64_t bytes = 0;
  for (const OwnedBuffer& b : m.owned) bytes += int64_t(b.bytes);
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return bytes;
  char line[4096];
  bool model_file = false;
  while (std::fgets(line, sizeof line, f)) {
    // Mapping header: "start-end perms offset dev inode   path"; fields follow as "Name: N kB".
    const char* colon = std::strchr(line, ':');
    const char* space = std::strchr(line, ' ');
    if (space && (!colon || space < colon)) {
      std::string s(line);
      while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
      model_file = s.size() > 12 && s.compare(s.size() - 12, 12, ".safetensors") == 0 &&
                   s.find(m.dir) != std::string::npos;
      continue;
    }
    long kb = 0;
    if (model_file && std::sscanf(line, "Rss: %ld kB", &kb) == 1) bytes += int64_t(kb) * 1024;
  }
  std::fclose(f);
  return bytes;
}

}  // namespace herd
