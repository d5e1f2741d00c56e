// A JSON file read whole: strata::Error "<file>: cannot open" or "<file>: invalid JSON: ...".
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

namespace strata {

nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace strata
