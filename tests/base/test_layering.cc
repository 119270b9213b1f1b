// The layer rule of DESIGN.md ("lower layers never include higher ones"), checked on the
// sources: every `#include "herd/<layer>/..."` of every file under src/herd/<folder>/ must name a
// layer that folder may use. In particular ops/ (kernels) never includes model/, and model/
// never includes tokenizer/ or the converters above both (convert/).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace {

namespace fs = std::filesystem;

// Folder -> layers its files must not include.
const std::map<std::string, std::set<std::string>>& forbidden() {
  static const std::set<std::string> above_ops = {"model",   "tokenizer", "runtime",
                                                  "convert", "server",    "cli"};
  static const std::map<std::string, std::set<std::string>> m = {
      {"base", {"io", "quant", "ops", "model", "tokenizer", "runtime", "convert", "server", "cli"}},
      {"quant", {"io", "ops", "model", "tokenizer", "runtime", "convert", "server", "cli"}},
      {"io", above_ops},
      {"ops", above_ops},
      {"model", {"tokenizer", "runtime", "convert", "server", "cli"}},
      {"tokenizer", {"ops", "model", "runtime", "convert", "server", "cli"}},
      {"runtime", {"convert", "server", "cli"}},
      {"convert", {"runtime", "server", "cli"}},
      {"server", {"convert", "cli"}},
  };
  return m;
}

TEST(Layering, NoIncludeFromALowerLayerIntoAHigherOne) {
  const fs::path root = fs::path(HERD_SOURCE_DIR) / "src" / "herd";
  ASSERT_TRUE(fs::is_directory(root)) << root;
  const std::regex inc(R"(^\s*#\s*include\s*"herd/([a-z_]+)/)");
  int files = 0, includes = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".h" && ext != ".cc")) continue;
    const std::string folder = fs::relative(e.path(), root).begin()->string();
    const auto rule = forbidden().find(folder);
    ++files;
    std::ifstream in(e.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      std::smatch mt;
      if (!std::regex_search(line, mt, inc)) continue;
      ++includes;
      if (rule != forbidden().end()) {
        EXPECT_FALSE(rule->second.count(mt[1].str()))
            << e.path().string() << ":" << n << ": " << folder << "/ includes " << mt[1].str()
            << "/ (" << line << ")";
      }
    }
  }
  // The walk saw the tree (a wrong root would pass vacuously).
  EXPECT_GT(files, 100);
  EXPECT_GT(includes, 300);
}

// The checker itself catches a violation: the same regex and table on a made-up line.
TEST(Layering, RuleRejectsOpsIncludingModel) {
  const std::regex inc(R"(^\s*#\s*include\s*"herd/([a-z_]+)/)");
  std::smatch mt;
  const std::string line = "#include \"herd/model/config.h\"";
  ASSERT_TRUE(std::regex_search(line, mt, inc));
  EXPECT_TRUE(forbidden().at("ops").count(mt[1].str()));
  EXPECT_TRUE(forbidden().at("model").count("tokenizer"));
  EXPECT_TRUE(forbidden().at("model").count("convert"));
}

}  // namespace
