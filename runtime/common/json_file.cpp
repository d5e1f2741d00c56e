#include "runtime/common/json_file.h"

#include <fstream>

#include "runtime/common/activity.h"
#include "runtime/common/error.h"
#include "runtime/common/files.h"

namespace strata {

nlohmann::json parse_json_bounded(const std::string& text, const std::string& source, bool comments) {
  const nlohmann::json::parser_callback_t depth_guard = [&source](int depth, nlohmann::json::parse_event_t,
                                                                  nlohmann::json&) {
    if (depth > kMaxJsonDepth)
      throw Error(source + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return true;
  };
  const Activity doing("parsing the JSON of", source, static_cast<int64_t>(text.size()), "bytes");
  try {
    return nlohmann::json::parse(text, depth_guard, true, comments);
  } catch (const nlohmann::json::parse_error& e) {
    throw_error({source, "", static_cast<int64_t>(e.byte)}, std::string("invalid JSON: ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid JSON: " + e.what());
  }
}

nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view flag) {
  return parse_json_bounded(read_input_file(path, "JSON file", uint64_t{256} << 20, flag), input_name(path, flag));
}

}  // namespace strata
