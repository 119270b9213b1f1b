// `herd detokenize -m DIR [--jsonl]`: a JSON array of token ids on stdin -> the text they spell.
// Plain mode writes the raw bytes (ids that split a character give partial UTF-8, as the model
// produced it); --jsonl reads one array per line and writes one JSON string per line, with
// ill-formed UTF-8 replaced by U+FFFD so the line stays valid JSON.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "herd/cli/command.h"
#include "herd/tokenizer/tokenizer.h"
#include "herd/tokenizer/tokenizer_gguf.h"

namespace herd::cli {
namespace {

Result<std::vector<int32_t>> parse_ids(const std::string& text, const std::string& where) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return make_error("{}: expected a JSON array of token ids", where);
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer() || j[i].get<int64_t>() < INT32_MIN ||
        j[i].get<int64_t>() > INT32_MAX)
      return make_error("{}: element {} is not an integer token id", where, i);
    ids.push_back(static_cast<int32_t>(j[i].get<int64_t>()));
  }
  return ids;
}

int run_detokenize(const std::string& model_dir, bool jsonl) {
  auto tok = load_tokenizer_for(model_dir);
  if (!tok) return report(tok.status());
  if (!jsonl) {
    std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    auto ids = parse_ids(text, "stdin");
    if (!ids) return report(ids.status());
    auto out = tok->decode(*ids);
    if (!out) return report(out.status());
    std::fwrite(out->data(), 1, out->size(), stdout);
    return 0;
  }
  std::string line;
  for (size_t line_no = 1; std::getline(std::cin, line); ++line_no) {
    if (line.empty()) continue;
    auto ids = parse_ids(line, fmt::format("stdin line {}", line_no));
    if (!ids) return report(ids.status());
    auto out = tok->decode(*ids);
    if (!out) return report(out.status().with_context(fmt::format("stdin line {}", line_no)));
    std::string s =
        nlohmann::json(*out).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    s += '\n';
    std::fwrite(s.data(), 1, s.size(), stdout);
  }
  return 0;
}

CommandRegistrar reg("detokenize", "Print the text of a JSON array of token ids read from stdin",
                     [](CLI::App& app, std::function<int()>& run) {
                       auto model = std::make_shared<std::string>();
                       auto jsonl = std::make_shared<bool>(false);
                       app.add_option("-m,--model", *model,
                                      "Model directory (tokenizer.model or tokenizer.json)")
                           ->required();
                       app.add_flag("--jsonl", *jsonl,
                                    "Read one JSON array per line, write one JSON string per line");
                       run = [=] { return run_detokenize(*model, *jsonl); };
                     });

}  // namespace
}  // namespace herd::cli
