// herd: one binary, subcommands registered by the cmd_*.cc files (see command.h).
#include <cstdio>
#include <memory>
#include <vector>

#include "herd/base/log.h"
#include "herd/cli/command.h"

namespace herd::cli {
namespace {
struct Entry {
  const char* name;
  const char* description;
  CommandSetup setup;
};
std::vector<Entry>& registry() {
  static std::vector<Entry> r;
  return r;
}
}  // namespace

CommandRegistrar::CommandRegistrar(const char* name, const char* description, CommandSetup setup) {
  registry().push_back({name, description, std::move(setup)});
}

int report(const Status& s) {
  std::fprintf(stderr, "herd: error: %s\n", s.message().c_str());
  return 1;
}

}  // namespace herd::cli

int main(int argc, char** argv) {
  using namespace herd::cli;
  CLI::App app{"herd: Llama 4 inference engine and OpenAI-compatible server"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log progress and details to stderr");
  std::vector<std::function<int()>> runs(registry().size());
  std::vector<CLI::App*> subs;
  for (size_t i = 0; i < registry().size(); ++i) {
    CLI::App* sub = app.add_subcommand(registry()[i].name, registry()[i].description);
    registry()[i].setup(*sub, runs[i]);
    subs.push_back(sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (verbose) herd::set_log_level(herd::LogLevel::kInfo);
  for (size_t i = 0; i < subs.size(); ++i)
    if (subs[i]->parsed() && runs[i]) return runs[i]();
  return 1;
}
