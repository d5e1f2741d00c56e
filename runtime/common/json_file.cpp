#include "runtime/common/json_file.h"

#include <fstream>

#include "runtime/common/error.h"
#include "runtime/common/files.h"

namespace strata {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  const std::string text = read_input_file(path, "JSON file", uint64_t{256} << 20);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": invalid JSON: " + e.what());
  }
}

}  // namespace strata
