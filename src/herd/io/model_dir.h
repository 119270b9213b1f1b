// Finding the files of a model directory (spec §2.1: "find files, don't assume them").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "herd/base/status.h"

namespace herd {

inline constexpr const char* kSafetensorsIndexName = "model.safetensors.index.json";
inline constexpr const char* kSingleSafetensorsName = "model.safetensors";

struct ModelDirFiles {
  std::string dir;
  std::optional<std::string> config;              // config.json
  std::optional<std::string> generation_config;   // generation_config.json
  std::optional<std::string> tokenizer_model;     // tiktoken tokenizer.model (top or original/)
  std::optional<std::string> tokenizer_json;      // HF tokenizer.json
  std::optional<std::string> tokenizer_config;    // tokenizer_config.json
  std::optional<std::string> special_tokens_map;  // special_tokens_map.json
  std::optional<std::string> chat_template;       // chat_template.jinja or chat_template.json
  std::optional<std::string> safetensors_index;   // model.safetensors.index.json
  std::vector<std::string> safetensors;           // every *.safetensors, sorted
  bool has_weights() const { return safetensors_index || !safetensors.empty(); }
};

// `-m DIR` is an existing directory: "model directory X does not exist", "X is a file, expected
// the model directory", symlink loops and permission errors named.
Status check_model_dir(const std::string& dir);

// Lists what is there; never fails on a missing file (callers decide what they need). The index
// and the *.safetensors entries are listed whatever they are (a FIFO, a directory, a dangling
// link): opening them gives the error, so a broken file is never mistaken for an absent one.
ModelDirFiles scan_model_dir(const std::string& dir);

// Paths of the individual files, or nullopt.
std::optional<std::string> find_config(const std::string& dir);
std::optional<std::string> find_generation_config(const std::string& dir);
// tokenizer.model at top level, else under original/ (HF repos keep Meta's copy there).
std::optional<std::string> find_tokenizer_model(const std::string& dir);
std::optional<std::string> find_tokenizer_json(const std::string& dir);

// Every *.safetensors entry directly in `dir` (files or not, see scan_model_dir), sorted.
std::vector<std::string> list_safetensors(const std::string& dir);

}  // namespace herd
