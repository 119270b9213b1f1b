#include "herd/io/json_parse.h"

#include <unordered_set>
#include <vector>

namespace herd {

using json = nlohmann::json;

namespace {
// nlohmann's what() starts with "[json.exception.parse_error.101] "; the rest ("parse error at
// line 3, column 5: syntax error while parsing ...") is what a user needs.
std::string without_exception_id(const char* what) {
  std::string s(what);
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find("] ");
    if (close != std::string::npos) s.erase(0, close + 2);
  }
  return s;
}
}  // namespace

Result<json> parse_json(std::string_view text, const std::string& source,
                        DuplicateKeys duplicates) {
  // One set of seen keys per open object; `path` holds the key each object was found under.
  std::vector<std::unordered_set<std::string>> seen;
  std::vector<std::string> path;
  std::string last_key;
  json::parser_callback_t cb = nullptr;
  if (duplicates == DuplicateKeys::kError) {
    cb = [&](int, json::parse_event_t ev, json& parsed) -> bool {
      switch (ev) {
        case json::parse_event_t::object_start:
          path.push_back(seen.empty() ? std::string() : last_key);
          seen.emplace_back();
          break;
        case json::parse_event_t::object_end:
          seen.pop_back();
          path.pop_back();
          break;
        case json::parse_event_t::key: {
          last_key = parsed.get<std::string>();
          if (!seen.back().insert(last_key).second) {
            const std::string& in = path.back();
            throw Error{
                make_error("{}: key '{}' appears twice {}", source, last_key,
                           in.empty() ? std::string("at the top level") : "in '" + in + "'")};
          }
          break;
        }
        default:
          break;
      }
      return true;
    };
  }
  try {
    return json::parse(text.begin(), text.end(), cb);
  } catch (const Error& e) {
    return e.status;
  } catch (const json::parse_error& e) {
    return make_error("{}: not valid JSON: {}", source, without_exception_id(e.what()));
  } catch (const json::exception& e) {
    return make_error("{}: not valid JSON: {}", source, without_exception_id(e.what()));
  }
}

}  // namespace herd
