// gguf::Files: opens every part of a split GGUF (the naming is llama.cpp's llama_split_path,
// "%s-%05d-of-%05d.gguf") and checks the parts agree with each other.
#include "herd/io/gguf_files.h"

#include <fmt/format.h>

#include <filesystem>
#include <regex>
#include <unordered_set>

namespace herd::gguf {

bool is_gguf_path(const std::string& path) {
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
}

bool parse_split_name(const std::string& path, SplitName* out) {
  static const std::regex re(R"(^(.*)-([0-9]{5})-of-([0-9]{5})\.gguf$)");
  std::smatch m;
  if (!std::regex_match(path, m, re)) return false;
  out->prefix = m[1].str();
  out->no = std::stoi(m[2].str());
  out->count = std::stoi(m[3].str());
  return out->no >= 1 && out->count >= 1 && out->no <= out->count;
}

std::string split_part_path(const std::string& prefix, int no, int count) {
  return fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, no, count);
}

namespace {
int64_t int_key(const Reader& r, const char* key, int64_t fallback) {
  int64_t v = fallback;
  if (const Value* x = r.find(key)) x->get_int(&v);
  return v;
}
}  // namespace

Result<Files> Files::open(const std::string& path) {
  Files f;
  SplitName split;
  const bool is_split = parse_split_name(path, &split);
  const int count = is_split ? split.count : 1;
  for (int no = 1; no <= count; ++no) {
    const std::string p = is_split ? split_part_path(split.prefix, no, count) : path;
    if (is_split && !std::filesystem::exists(p))
      return make_error("{}: split GGUF part {} of {} is missing ({})", path, no, count, p);
    HERD_ASSIGN_OR_RETURN(Reader r, Reader::open(p));
    // The split.* keys, when present, must agree with the file name.
    const int64_t key_count = int_key(r, "split.count", is_split ? count : 1);
    const int64_t key_no = int_key(r, "split.no", no - 1);
    if (key_count != count || key_no != no - 1)
      return make_error("{}: split.no {} / split.count {} do not match part {} of {}", p, key_no,
                        key_count, no, count);
    f.parts_.push_back(std::move(r));
    f.paths_.push_back(p);
  }
  std::unordered_set<std::string> names;
  uint64_t total = 0;
  for (size_t i = 0; i < f.parts_.size(); ++i)
    for (const TensorInfo& t : f.parts_[i].tensors()) {
      ++total;
      if (!names.insert(t.name).second)
        return make_error("{}: tensor {} appears in two parts", f.paths_[i], t.name);
    }
  const int64_t want = int_key(f.first(), "split.tensors.count", int64_t(total));
  if (want != int64_t(total))
    return make_error("{}: split.tensors.count is {} but the {} part(s) hold {} tensors", path,
                      want, count, total);
  return f;
}

const TensorInfo* Files::find_tensor(const std::string& name, size_t* part) const {
  for (size_t i = 0; i < parts_.size(); ++i)
    if (const TensorInfo* t = parts_[i].find_tensor(name)) {
      if (part) *part = i;
      return t;
    }
  return nullptr;
}

uint64_t Files::file_bytes() const {
  uint64_t n = 0;
  for (const std::string& p : paths_) n += std::filesystem::file_size(p);
  return n;
}

}  // namespace herd::gguf
