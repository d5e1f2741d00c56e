// A JSON file read whole: strata::Error "<file>: cannot open" or "<file>: invalid JSON: ...".
// `flag`, when not empty, is the command-line option that gave the file: every message names
// the file as "--flag <file>".
#pragma once

#include <filesystem>
#include <string_view>

#include <nlohmann/json.hpp>

namespace strata {

nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view flag = {});

// JSON text parsed with nesting bounded (copies and dumps of nlohmann::json recurse once per
// level: a file nested tens of thousands deep would exhaust the stack long after parsing). Throws
// strata::Error "<source>: invalid JSON: ..." or "<source>: JSON nested deeper than N levels".
// comments: accept // and /* */ comments (hardware profiles).
constexpr int kMaxJsonDepth = 64;
nlohmann::json parse_json_bounded(const std::string& text, const std::string& source, bool comments = false);

}  // namespace strata
