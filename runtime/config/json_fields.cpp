#include "runtime/config/json_fields.h"

#include <cmath>
#include <limits>

#include "runtime/common/error.h"

namespace strata::config_detail {

namespace {
std::string where(const std::string& file) { return file.empty() ? std::string("config") : file; }
}  // namespace

Fields::Fields(const nlohmann::json& obj, std::string file, std::string prefix)
    : obj_(obj), file_(std::move(file)), prefix_(std::move(prefix)) {
  if (!obj_.is_object()) {
    if (prefix_.empty())
      throw Error(where(file_) + ": config must be a JSON object (found " + obj_.type_name() + ")");
    std::string key = prefix_.substr(0, prefix_.size() - 1);
    throw Error(where(file_) + ": key '" + key + "' must be an object (found " + obj_.type_name() + ")");
  }
}

bool Fields::has(const std::string& key) const { return get(key) != nullptr; }

const nlohmann::json* Fields::get(const std::string& key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

void Fields::fail(const std::string& key, const std::string& what) const {
  throw Error(where(file_) + ": key '" + prefix_ + key + "' " + what);
}

void Fields::missing(const std::string& key) const {
  throw Error(where(file_) + ": missing key '" + prefix_ + key + "'");
}

void Fields::wrong_type(const std::string& key, const char* expected, const nlohmann::json& v) const {
  fail(key, std::string("must be ") + expected + " (found " + v.type_name() + ")");
}

int64_t Fields::as_int(const nlohmann::json& v, const std::string& key) const {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail(key, "is out of range");
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    // Some tools write integral values as 4096.0.
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740992.0)
      return static_cast<int64_t>(d);
    fail(key, "must be an integer (found " + v.dump() + ")");
  }
  wrong_type(key, "an integer", v);
}

int64_t Fields::req_int(const std::string& key) const {
  const nlohmann::json* v = get(key);
  if (!v) missing(key);
  return as_int(*v, key);
}

int64_t Fields::opt_int(const std::string& key, int64_t def) const {
  const nlohmann::json* v = get(key);
  return v ? as_int(*v, key) : def;
}

double Fields::req_num(const std::string& key) const {
  const nlohmann::json* v = get(key);
  if (!v) missing(key);
  if (!v->is_number()) wrong_type(key, "a number", *v);
  const double d = v->get<double>();
  if (!std::isfinite(d)) fail(key, "must be finite");
  return d;
}

double Fields::opt_num(const std::string& key, double def) const { return has(key) ? req_num(key) : def; }

bool Fields::req_bool(const std::string& key) const {
  const nlohmann::json* v = get(key);
  if (!v) missing(key);
  if (!v->is_boolean()) wrong_type(key, "a boolean", *v);
  return v->get<bool>();
}

bool Fields::opt_bool(const std::string& key, bool def) const { return has(key) ? req_bool(key) : def; }

std::string Fields::req_str(const std::string& key) const {
  const nlohmann::json* v = get(key);
  if (!v) missing(key);
  if (!v->is_string()) wrong_type(key, "a string", *v);
  return v->get<std::string>();
}

std::string Fields::opt_str(const std::string& key, const std::string& def) const {
  return has(key) ? req_str(key) : def;
}

std::vector<int64_t> Fields::req_int_array(const std::string& key) const {
  const nlohmann::json* v = get(key);
  if (!v) missing(key);
  if (!v->is_array()) wrong_type(key, "an array of integers", *v);
  std::vector<int64_t> out;
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string k = key + "[" + std::to_string(i) + "]";
    out.push_back(as_int((*v)[i], k));
  }
  return out;
}

std::optional<std::vector<int64_t>> Fields::opt_int_array(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return req_int_array(key);
}

}  // namespace strata::config_detail
