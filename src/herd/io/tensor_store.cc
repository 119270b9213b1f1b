// TensorStore::open_dir: which files of a model directory hold the weights (see safetensors.h).
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "herd/io/json_parse.h"
#include "herd/io/model_dir.h"
#include "herd/io/safetensors.h"

namespace herd {

namespace fs = std::filesystem;
using json = nlohmann::json;

Result<std::map<std::string, std::vector<std::string>>> parse_safetensors_index(
    std::string_view text, const std::string& ip) {
  // A tensor mapped twice would silently go to one of two shards: refused.
  HERD_ASSIGN_OR_RETURN(json j, parse_json(text, ip, DuplicateKeys::kError));
  if (!j.is_object()) return make_error("{}: not a JSON object", ip);
  if (!j.contains("weight_map") || !j["weight_map"].is_object())
    return make_error("{}: missing object 'weight_map'", ip);
  std::map<std::string, std::vector<std::string>> by_shard;  // sorted: deterministic order
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      return make_error("{}: weight_map entry '{}' is not a file name", ip, it.key());
    const std::string shard = it.value().get<std::string>();
    // Shards live beside the index; refuse paths that would escape the directory.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "..")
      return make_error("{}: tensor '{}' maps to invalid shard name '{}'", ip, it.key(), shard);
    by_shard[shard].push_back(it.key());
  }
  if (by_shard.empty()) return make_error("{}: weight_map is empty", ip);
  return by_shard;
}

Result<std::unique_ptr<TensorStore>> TensorStore::open_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error("{}: not a directory", dir);
  const fs::path index_path = fs::path(dir) / kSafetensorsIndexName;
  // path_present, not exists: a FIFO, directory or symlink loop in a file's place is opened and
  // refused with a message, never skipped as absent.
  if (path_present(index_path.string())) {
    const std::string ip = index_path.string();
    HERD_ASSIGN_OR_RETURN(std::string text, read_text_file(ip));
    HERD_ASSIGN_OR_RETURN(auto by_shard, parse_safetensors_index(text, ip));
    auto s = std::unique_ptr<TensorStore>(new TensorStore());
    for (auto& [shard, names] : by_shard) {
      const std::string sp = (fs::path(dir) / shard).string();
      if (!path_present(sp))
        return make_error("{}: tensor '{}' maps to shard '{}', which does not exist", ip,
                          names.front(), sp);
      HERD_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(sp));
      for (const std::string& n : names) {
        const TensorView* v = f->find(n);
        if (!v)
          return make_error("{}: tensor '{}' maps to shard {}, which does not contain it", ip, n,
                            sp);
        s->by_name_[n] = v;
      }
      s->files_.push_back(std::move(f));
    }
    return s;
  }
  const fs::path single = fs::path(dir) / kSingleSafetensorsName;
  if (path_present(single.string())) return open_file(single.string());
  std::vector<std::string> files = list_safetensors(dir);
  if (files.empty())
    return make_error("{}: no weights (expected {}, {} or *.safetensors files)", dir,
                      kSafetensorsIndexName, kSingleSafetensorsName);
  auto s = std::unique_ptr<TensorStore>(new TensorStore());
  for (const std::string& p : files) {
    HERD_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(p));
    HERD_TRY(s->add_file_all(std::move(f)));
  }
  return s;
}

}  // namespace herd
