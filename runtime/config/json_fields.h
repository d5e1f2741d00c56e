// Typed reads of JSON object members with errors that name the file and the key
// ("FILE: missing key 'X'", "FILE: key 'X' must be an integer (found string)").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace strata::config_detail {

class Fields {
 public:
  // obj must be an object (else Error naming `prefix` or the file); prefix ("engram.") is
  // prepended to key names in messages.
  Fields(const nlohmann::json& obj, std::string file, std::string prefix = "");

  bool has(const std::string& key) const;  // present and not null
  const nlohmann::json* get(const std::string& key) const;  // nullptr when absent or null

  int64_t req_int(const std::string& key) const;
  int64_t opt_int(const std::string& key, int64_t def) const;
  double req_num(const std::string& key) const;
  double opt_num(const std::string& key, double def) const;
  bool req_bool(const std::string& key) const;
  bool opt_bool(const std::string& key, bool def) const;
  std::string opt_str(const std::string& key, const std::string& def) const;
  std::string req_str(const std::string& key) const;
  std::vector<int64_t> req_int_array(const std::string& key) const;
  std::optional<std::vector<int64_t>> opt_int_array(const std::string& key) const;

  // Converts an already fetched value (for keys that accept several forms).
  int64_t as_int(const nlohmann::json& v, const std::string& key) const;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  [[noreturn]] void missing(const std::string& key) const;
  [[noreturn]] void wrong_type(const std::string& key, const char* expected, const nlohmann::json& v) const;

  const std::string& file() const { return file_; }

 private:
  const nlohmann::json& obj_;
  std::string file_, prefix_;
};

}  // namespace strata::config_detail
