// herd: one binary, subcommands registered by the cmd_*.cc files (see command.h).
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
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

namespace {
// CLI11's own exit codes (105 for a failed validator, 104 for a failed conversion) and
// messages are replaced by herd's: one "herd: error: ..." line and exit code 1. Help and
// version requests still go through CLI11 (exit 0).
int report_parse_error(CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == 0) return app.exit(e);
  std::fprintf(stderr, "herd: error: %s\n", e.what());
  if (dynamic_cast<const CLI::RequiredError*>(&e) == nullptr &&
      dynamic_cast<const CLI::ValidationError*>(&e) == nullptr &&
      dynamic_cast<const CLI::ConversionError*>(&e) == nullptr)
    std::fprintf(stderr, "Run with --help for more information.\n");
  return 1;
}

int run_main(int argc, char** argv) {
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
    return report_parse_error(app, e);
  }
  if (verbose) herd::set_log_level(herd::LogLevel::kInfo);
  for (size_t i = 0; i < subs.size(); ++i)
    if (subs[i]->parsed() && runs[i]) return runs[i]();
  return 1;
}
}  // namespace

// Errors are Status values everywhere; this is the last line of defence so that nothing (an
// allocation failure, a library's exception) ends the process by std::terminate.
int main(int argc, char** argv) {
  try {
    return run_main(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "herd: error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herd: error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "herd: error: unknown exception\n");
  }
  return 1;
}
