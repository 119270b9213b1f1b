#include "herd/io/model_dir.h"

#include <algorithm>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "herd/base/mapped_file.h"

namespace herd {

namespace fs = std::filesystem;

namespace {
std::optional<std::string> regular_file(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p.string();
  return std::nullopt;
}
}  // namespace

Status check_model_dir(const std::string& dir) {
  if (dir.empty()) return Status::error("the model directory (-m) is empty");
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT) return make_error("model directory {} does not exist", dir);
    if (e == ELOOP) return make_error("model directory {}: symbolic link loop", dir);
    return make_error("model directory {}: {}", dir, std::strerror(e));
  }
  if (S_ISREG(st.st_mode))
    return make_error("{} is a file, expected the model directory (the folder with config.json)",
                      dir);
  if (!S_ISDIR(st.st_mode))
    return make_error("{} is {}, expected the model directory", dir, file_kind_name(st.st_mode));
  return Status::ok();
}

std::optional<std::string> find_config(const std::string& dir) {
  return regular_file(fs::path(dir) / "config.json");
}

std::optional<std::string> find_generation_config(const std::string& dir) {
  return regular_file(fs::path(dir) / "generation_config.json");
}

std::optional<std::string> find_tokenizer_model(const std::string& dir) {
  if (auto p = regular_file(fs::path(dir) / "tokenizer.model")) return p;
  return regular_file(fs::path(dir) / "original" / "tokenizer.model");
}

std::optional<std::string> find_tokenizer_json(const std::string& dir) {
  return regular_file(fs::path(dir) / "tokenizer.json");
}

std::vector<std::string> list_safetensors(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".safetensors") out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

ModelDirFiles scan_model_dir(const std::string& dir) {
  ModelDirFiles f;
  f.dir = dir;
  const fs::path d(dir);
  f.config = find_config(dir);
  f.generation_config = find_generation_config(dir);
  f.tokenizer_model = find_tokenizer_model(dir);
  f.tokenizer_json = find_tokenizer_json(dir);
  f.tokenizer_config = regular_file(d / "tokenizer_config.json");
  f.special_tokens_map = regular_file(d / "special_tokens_map.json");
  f.chat_template = regular_file(d / "chat_template.jinja");
  if (!f.chat_template) f.chat_template = regular_file(d / "chat_template.json");
  if (path_present((d / kSafetensorsIndexName).string()))
    f.safetensors_index = (d / kSafetensorsIndexName).string();
  f.safetensors = list_safetensors(dir);
  return f;
}

}  // namespace herd
