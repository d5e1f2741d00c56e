// GGUF v3 (ggml's single-file format): header, metadata and tensor infos, read in place;
// and a writer for generated models. Tensor data is never copied by the reader.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu-kernels/weight_type.h"

namespace strata {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

// ggml tensor type ids used by strata (ggml-common.h numbering).
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13,
  Q6_K = 14, IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, MXFP4 = 39,
};

// Maps a ggml type id to a WeightType; nullopt for ids strata does not read.
std::optional<WeightType> weight_type_from_ggml(uint32_t ggml_type);
std::optional<GgmlType> ggml_from_weight_type(WeightType t);

struct GgufKV {
  std::string key;
  GgufType type;
  GgufType array_type = GgufType::U8;  // element type when type == ARRAY (nested arrays: ARRAY)
  nlohmann::json value;                // numbers, bool, string, or (nested) array of them
  // Nested arrays only: element type of the arrays one, two, ... levels below this one
  // (every array at a level shares it). Empty: the writer infers inner types from `value`,
  // and the reader leaves it empty when arrays at one level disagree.
  std::vector<GgufType> nested_types = {};
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type;
  WeightType type;
  std::vector<uint64_t> ne;   // ggml order: ne[0] is the innermost (contiguous) dimension
  uint64_t offset;            // absolute byte offset of the data in the file
  uint64_t nbytes;            // exact byte length of the data
};

struct GgufFile {
  std::string path;
  uint64_t file_size = 0;
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;   // absolute offset where tensor data starts
  std::vector<GgufKV> kv;
  std::vector<GgufTensorInfo> tensors;

  const GgufKV* find(std::string_view key) const;
  // key -> value, as one JSON object (what config and tokenizer parsers consume).
  nlohmann::json metadata_json() const;
};

// Parses the header of a GGUF file (the file is not read beyond its header and tensor
// infos). Throws strata::Error naming the file, key or tensor and the byte offset on any
// inconsistency: wrong magic/version, truncation, counts or lengths that overflow or run
// past the end, unknown value or tensor types, data ranges past end of file or
// overlapping, duplicate names or keys, invalid UTF-8 in keys or names.
GgufFile read_gguf(const std::filesystem::path& path);

// Same checks over an in-memory image of a whole file (used by tests and the fuzzer).
GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string& name);

// Writes a GGUF v3 file: metadata in insertion order, tensors aligned to `alignment`.
class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32);
  void add_kv(GgufKV kv);
  // ne in ggml order; data must hold exactly the bytes ne and type imply.
  void add_tensor(std::string name, WeightType type, std::vector<uint64_t> ne,
                  std::vector<uint8_t> data);
  // Writes everything to path; throws strata::Error on I/O failure.
  void write(const std::filesystem::path& path) const;

 private:
  struct Pending {
    std::string name;
    WeightType type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> data;
  };
  uint64_t alignment_;
  std::vector<GgufKV> kv_;
  std::vector<Pending> tensors_;
};

}  // namespace strata
