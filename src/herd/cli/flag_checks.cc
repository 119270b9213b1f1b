#include "herd/cli/flag_checks.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "herd/base/thread_pool.h"
#include "herd/cli/token_list.h"

namespace herd::cli {

namespace {

// The whole text must be one integer; a value beyond int64 is "out of range", not a parse error.
bool parse_int(const std::string& s, int64_t* out, bool* overflow) {
  *overflow = false;
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end != s.c_str() + s.size()) return false;
  if (errno == ERANGE) *overflow = true;
  *out = v;
  return true;
}

bool parse_real(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);  // "1e999" parses as inf, refused as not finite
  return end == s.c_str() + s.size();
}

std::string shown(const std::string& s) {
  return s.empty() ? "''" : s;
}

std::string check_int(const std::string& s, int64_t lo, int64_t hi, const std::string& note) {
  int64_t v = 0;
  bool overflow = false;
  const std::string range =
      fmt::format("an integer in [{}, {}]{}", lo, hi, note.empty() ? "" : " (" + note + ")");
  if (!parse_int(s, &v, &overflow) || overflow || v < lo || v > hi)
    return fmt::format("got {}, expected {}", shown(s), range);
  return {};
}

}  // namespace

CLI::Validator threads_flag() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::string err = check_int(s, 1, ThreadPool::kMaxThreads, "");
        if (!err.empty()) return err;
        const long n = std::strtol(s.c_str(), nullptr, 10);
        const int cores = ThreadPool::physical_cores();
        if (n > cores)
          fmt::print(stderr,
                     "herd: warning: --threads {} is more than the {} physical cores; the extra "
                     "threads only compete with each other\n",
                     n, cores);
        return {};
      },
      fmt::format("INT in [1, {}]", ThreadPool::kMaxThreads));
}

CLI::Validator int_in(int64_t lo, int64_t hi, const std::string& note) {
  return CLI::Validator([=](std::string& s) { return check_int(s, lo, hi, note); },
                        fmt::format("INT in [{}, {}]", lo, hi));
}

CLI::Validator uint64_flag() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        const std::string err =
            fmt::format("got {}, expected an integer in [0, {}]", shown(s), UINT64_MAX);
        if (s.empty() || s[0] == '-' || s[0] == '+' || std::isspace((unsigned char)s[0]))
          return err;
        errno = 0;
        char* end = nullptr;
        std::strtoull(s.c_str(), &end, 10);
        if (end != s.c_str() + s.size() || errno == ERANGE) return err;
        return {};
      },
      "UINT64");
}

CLI::Validator real_in(double lo, double hi, bool lo_open) {
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        double v = 0;
        const bool ok =
            parse_real(s, &v) && std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
        if (!ok)
          return fmt::format("got {}, expected a finite number in {}{}, {}]", shown(s),
                             lo_open ? "(" : "[", lo, hi);
        return {};
      },
      "NUMBER");
}

CLI::Validator sampling_flag(RequestField field) {
  return CLI::Validator(
      [field](std::string& s) -> std::string {
        double v = 0;
        if (!parse_real(s, &v))
          return fmt::format("got {}, expected {}", shown(s),
                             field == RequestField::kTopK ? "an integer" : "a number");
        std::string p = sampling_value_problem(field, v);
        // Print the value as typed ("1e999", not "inf").
        if (!p.empty()) p = fmt::format("got {}{}", s, p.substr(p.find(',')));
        return p;
      },
      "NUMBER");
}

CLI::Validator int_list_flag() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        auto r = parse_int_list(s, "list");
        if (!r) return r.status().message().substr(6);  // drop the "list: " source prefix
        if (r->empty()) return fmt::format("got {}, expected at least one integer", shown(s));
        return {};
      },
      "LIST");
}

}  // namespace herd::cli
