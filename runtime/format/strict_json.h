// JSON headers of weight files parsed strictly: duplicate object keys (which a plain parse
// silently collapses to the last one) and absurd nesting are errors with a byte offset.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace strata {

// Parses text as one JSON value (trailing whitespace allowed). Throws strata::Error naming
// `file` and the absolute byte offset (base_offset + position in text) on invalid JSON
// (with the parser's own message), invalid UTF-8, a duplicate key (named) or nesting deeper
// than max_depth.
nlohmann::json parse_json_strict(std::string_view text, const std::string& file, uint64_t base_offset,
                                 int max_depth = 64);

}  // namespace strata
