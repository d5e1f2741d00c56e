// Opens a model as the user names it — an HF directory (config.json + safetensors +
// tokenizer files) or a GGUF file (single or split) — and checks that its tensors are the
// ones its architecture needs, with the shapes its config implies.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "runtime/config/model_config.h"
#include "runtime/format/weight_index.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata {

struct ModelFiles {
  std::filesystem::path path;
  ModelConfig config;
  WeightIndex index;
  std::optional<Tokenizer> tokenizer;  // absent when the model ships none (see tokenizer_error)
  std::string tokenizer_error;
};

struct OpenOptions {
  bool require_tokenizer = false;  // a missing tokenizer becomes an error
  bool check_schema = true;        // every required tensor present with the expected shape
};

ModelFiles open_model(const std::filesystem::path& path, const OpenOptions& opts = {});

// Throws strata::Error naming the model, the tensor and the expected vs found shape when a
// required tensor is missing or has the wrong shape.
void check_against_schema(const ModelConfig& config, const WeightIndex& index, const std::string& model_name);

}  // namespace strata
