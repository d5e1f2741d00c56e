// Deterministic random models in the real on-disk layouts (HF directory or GGUF), a few MB,
// for tests and the default main job.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu-kernels/weight_type.h"
#include "runtime/config/model_config.h"

namespace strata {

struct TinyOptions {
  Arch arch = Arch::DeepseekV3;
  bool engram = false;
  uint64_t seed = 1;
  std::string dtype = "bf16";   // bf16 f16 f32 fp8 fp4 (HF); bf16 f16 f32 and the GGUF block types (gguf_block_types()) (GGUF)
  std::string format = "hf";    // "hf" | "gguf"
  int shards = 1;               // HF only: >1 writes model-0000k-of-0000n.safetensors + index
  // Directory holding the real tokenizer.json/tokenizer_config.json; empty: a generated
  // byte-level BPE tokenizer with a small vocabulary.
  std::filesystem::path tokenizer_dir;
  // Config keys set over the tiny config (e.g. {"hidden_size": 2048} for a larger model);
  // the result is validated like any config.json.
  nlohmann::json config_overrides = nlohmann::json::object();
  // Write into a non-empty folder (HF) or over an existing .gguf: the model files make-tiny
  // writes (model*.safetensors, model.safetensors.index.json, config.json, tokenizer.json,
  // tokenizer_config.json) are removed first, nothing else. Without it both are errors.
  bool force = false;
  // Called after each tensor is drawn and encoded (done of total), from any thread, one at a time.
  std::function<void(size_t done, size_t total)> progress;
};

struct TinyReport {
  std::filesystem::path path;          // the directory (HF) or the .gguf file
  ModelConfig config;
  uint64_t bytes_written = 0;
  std::vector<std::string> notes;      // e.g. tensors kept in another type and why
};

// The tiny config of an architecture (vocab as the tokenizer needs).
nlohmann::json tiny_config_json(Arch arch, bool engram, int64_t vocab_size);

TinyReport make_tiny_model(const TinyOptions& opts, const std::filesystem::path& out);

// Where the setup script installs the real DeepSeek-V3 tokenizer (may not exist).
std::filesystem::path default_real_tokenizer_dir();

}  // namespace strata
