// Test driver for the tokenizer integration tests (not shipped in herd):
//   tokenizer_tool export-hf-json MODEL_DIR OUT.json   tokenizer.json from tokenizer.model
//   tokenizer_tool render-chat MODEL_DIR < cases.json     see render_chat_cases()
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "herd/tokenizer/chat_format.h"
#include "herd/tokenizer/tokenizer.h"

using namespace herd;

namespace {

int fail(const Status& s) {
  std::fprintf(stderr, "tokenizer_tool: %s\n", s.message().c_str());
  return 1;
}

int export_hf_json(const std::string& dir, const std::string& out) {
  auto tok = Tokenizer::load(dir);
  if (!tok) return fail(tok.status());
  Status s = write_hf_tokenizer_json(*tok, out);
  return s ? 0 : fail(s);
}

// Reads a JSON list of cases {"name", "messages", "tools"?, "add_generation_prompt"?,
// "tools_in_user_message"?} and prints one JSON line per case: {"name", "text", "ids",
// "ids_of_text" (the text encoded with specials allowed), "image_positions"} or {"name", "error"}.
int render_chat_cases(const std::string& dir) {
  using ojson = nlohmann::ordered_json;
  auto tok = Tokenizer::load(dir);
  if (!tok) return fail(tok.status());
  std::string in{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  ojson cases = ojson::parse(in, nullptr, false);
  if (!cases.is_array()) return fail(make_error("stdin: expected a JSON list of cases"));
  for (const ojson& c : cases) {
    ChatOptions opt;
    opt.add_generation_prompt = c.value("add_generation_prompt", true);
    opt.tools_in_user_message = c.value("tools_in_user_message", true);
    if (c.contains("tools")) opt.tools = c["tools"];
    ojson line = {{"name", c.value("name", "")}};
    auto r = render_chat(*tok, c.contains("messages") ? c["messages"] : ojson(), opt);
    if (!r) {
      line["error"] = r.status().message();
    } else {
      line["text"] = r->text;
      line["ids"] = r->ids;
      line["ids_of_text"] = tok->encode(r->text, true);
      line["image_positions"] = r->image_positions;
    }
    std::printf("%s\n", line.dump().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "export-hf-json" && argc == 4) return export_hf_json(argv[2], argv[3]);
  if (cmd == "render-chat" && argc == 3) return render_chat_cases(argv[2]);
  std::fprintf(stderr,
               "usage: tokenizer_tool export-hf-json MODEL_DIR OUT.json\n"
               "       tokenizer_tool render-chat MODEL_DIR < cases.json\n");
  return 2;
}
