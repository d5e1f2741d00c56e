#include "runtime/format/strict_json.h"

#include <cstddef>
#include <iterator>
#include <set>
#include <vector>

#include "runtime/common/error.h"

namespace strata {
namespace {

using Json = nlohmann::json;

// Input iterator over the text that publishes how far the parser has read.
struct CountingIter {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  const char* p = nullptr;
  const char** reached = nullptr;

  reference operator*() const { return *p; }
  CountingIter& operator++() {
    ++p;
    if (reached != nullptr && p > *reached) *reached = p;
    return *this;
  }
  CountingIter operator++(int) {
    CountingIter old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIter& o) const { return p == o.p; }
  bool operator!=(const CountingIter& o) const { return p != o.p; }
};

// Builds the DOM through nlohmann's own SAX DOM builder and checks keys and depth on the way.
class StrictSax {
 public:
  StrictSax(Json& out, std::string_view text, const char** reached, int max_depth)
      : dom_(out, false), text_(text), reached_(reached), max_depth_(max_depth) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(Json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(Json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(Json::number_float_t v, const Json::string_t& s) { return dom_.number_float(v, s); }
  bool string(Json::string_t& v) { return dom_.string(v); }
  bool binary(Json::binary_t& v) { return dom_.binary(v); }

  bool start_object(std::size_t n) {
    if (!enter()) return false;
    keys_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(Json::string_t& k) {
    if (!keys_.back().insert(k).second) {
      error_ = "duplicate key '" + k + "' in JSON header";
      error_pos_ = key_start();
      return false;
    }
    return dom_.key(k);
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (!enter()) return false;
    return dom_.start_array(n);
  }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) {
    const std::string what = ex.what();
    error_ = (what.find("UTF-8") != std::string::npos ? "invalid UTF-8 in JSON header: "
                                                      : "invalid JSON header: ") +
             what;
    error_pos_ = position > 0 ? position - 1 : 0;
    return false;
  }

  const std::string& error() const { return error_; }
  size_t error_pos() const { return error_pos_; }

 private:
  bool enter() {
    if (++depth_ > max_depth_) {
      error_ = "JSON header nested deeper than " + std::to_string(max_depth_) + " levels";
      error_pos_ = consumed() > 0 ? consumed() - 1 : 0;
      return false;
    }
    return true;
  }
  size_t consumed() const { return static_cast<size_t>(*reached_ - text_.data()); }
  // The parser reports a key right after its closing quote: walk back to the opening one.
  size_t key_start() const {
    size_t end = consumed();
    if (end == 0) return 0;
    size_t i = end - 1;  // closing quote
    while (i > 0) {
      --i;
      if (text_[i] != '"') continue;
      size_t backslashes = 0;
      while (backslashes < i && text_[i - 1 - backslashes] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return i;
    }
    return 0;
  }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  std::string_view text_;
  const char** reached_;
  int max_depth_;
  int depth_ = 0;
  std::vector<std::set<std::string>> keys_;
  std::string error_;
  size_t error_pos_ = 0;
};

}  // namespace

nlohmann::json parse_json_strict(std::string_view text, const std::string& file, uint64_t base_offset,
                                 int max_depth) {
  Json out;
  const char* reached = text.data();
  StrictSax sax(out, text, &reached, max_depth);
  const CountingIter first{text.data(), &reached};
  const CountingIter last{text.data() + text.size(), &reached};
  const bool ok = Json::sax_parse(first, last, &sax, nlohmann::detail::input_format_t::json, true, false);
  if (!ok || !sax.error().empty()) {
    const std::string what = sax.error().empty() ? std::string("invalid JSON header") : sax.error();
    throw_error({file, "", static_cast<int64_t>(base_offset + sax.error_pos())}, what);
  }
  return out;
}

}  // namespace strata
