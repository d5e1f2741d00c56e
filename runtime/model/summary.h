// What `strata inspect` reports: parameters (total, active per token) and bytes by tensor
// class and by weight type, adding up to the bytes of the files on disk.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/model/model_files.h"

namespace strata {

struct ModelSummary {
  std::string arch;
  std::string format;               // "safetensors" | "gguf"
  size_t n_files = 0, n_tensors = 0;
  int64_t total_params = 0;         // main model, MTP excluded
  int64_t active_params = 0;        // per token: all but routed experts, plus top_k of them
  int64_t mtp_params = 0;
  uint64_t file_bytes = 0;          // sum of file sizes
  uint64_t tensor_bytes = 0;        // sum of tensor byte ranges (scales included)
  std::map<std::string, uint64_t> bytes_by_class;
  std::map<std::string, int64_t> params_by_class;
  std::map<std::string, uint64_t> bytes_by_type;
};

ModelSummary summarize(const ModelFiles& model);
nlohmann::json summary_json(const ModelSummary& s);
std::string summary_text(const ModelFiles& model, const ModelSummary& s);

}  // namespace strata
