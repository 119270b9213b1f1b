// `herd tokenize -m DIR [--special] [--jsonl]`: UTF-8 text on stdin -> token ids as JSON.
// With --jsonl every input line is one JSON string and every output line one JSON array
// (what the tiktoken conformance test drives).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "herd/cli/command.h"
#include "herd/tokenizer/tokenizer.h"
#include "herd/tokenizer/tokenizer_gguf.h"

namespace herd::cli {
namespace {

void print_ids(const std::vector<int32_t>& ids, std::string& buf) {
  buf.clear();
  buf += '[';
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) buf += ',';
    buf += std::to_string(ids[i]);
  }
  buf += "]\n";
  std::fwrite(buf.data(), 1, buf.size(), stdout);
}

int run_tokenize(const std::string& model_dir, bool special, bool jsonl) {
  auto tok = load_tokenizer_for(model_dir);
  if (!tok) return report(tok.status());
  std::string buf;
  if (!jsonl) {
    std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    print_ids(tok->encode(text, special), buf);
    return 0;
  }
  std::string line;
  for (size_t line_no = 1; std::getline(std::cin, line); ++line_no) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_string())
      return report(make_error("stdin line {}: expected one JSON string per line", line_no));
    print_ids(tok->encode(j.get_ref<const std::string&>(), special), buf);
  }
  return 0;
}

CommandRegistrar reg("tokenize", "Print the token ids of UTF-8 text read from stdin",
                     [](CLI::App& app, std::function<int()>& run) {
                       auto model = std::make_shared<std::string>();
                       auto special = std::make_shared<bool>(false);
                       auto jsonl = std::make_shared<bool>(false);
                       app.add_option("-m,--model", *model,
                                      "Model directory (tokenizer.model or tokenizer.json)")
                           ->required();
                       app.add_flag("--special", *special,
                                    "Recognise special-token names such as <|eot|> in the text");
                       app.add_flag("--jsonl", *jsonl,
                                    "Read one JSON string per line, write one JSON array per line");
                       run = [=] { return run_tokenize(*model, *special, *jsonl); };
                     });

}  // namespace
}  // namespace herd::cli
