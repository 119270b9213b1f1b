// Subcommands register themselves here, one file each (cmd_<name>.cc), so adding a command
// touches no other file. Each command's run function returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "herd/base/status.h"

namespace herd::cli {

using CommandSetup = std::function<void(CLI::App& sub, std::function<int()>& run)>;

struct CommandRegistrar {
  CommandRegistrar(const char* name, const char* description, CommandSetup setup);
};

// Prints "herd: error: <message>" to stderr and returns exit code 1.
int report(const Status& s);

}  // namespace herd::cli
