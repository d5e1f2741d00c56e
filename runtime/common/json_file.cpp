#include "runtime/common/json_file.h"

#include <fstream>

#include "runtime/common/error.h"

namespace strata {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream f(path);
  if (!f) throw Error(path.string() + ": cannot open");
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": invalid JSON: " + e.what());
  }
}

}  // namespace strata
