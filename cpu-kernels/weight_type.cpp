#include "cpu-kernels/weight_type.h"

#include <array>
#include <cctype>
#include <string>

namespace strata {
namespace {

constexpr std::array<WeightTypeInfo, 36> kInfo = {{
    {"f32", 1, 4, true},
    {"f16", 1, 2, true},
    {"bf16", 1, 2, true},
    {"f8_e4m3", 1, 1, true},
    {"f8_e8m0", 1, 1, true},
    {"mxfp4", 2, 1, true},
    {"q8_0", 32, 34, true},
    {"q4_0", 32, 18, true},
    {"q4_k", 256, 144, true},
    {"q5_k", 256, 176, true},
    {"q6_k", 256, 210, true},
    {"i8", 1, 1, false},
    {"u8", 1, 1, false},
    {"i16", 1, 2, false},
    {"i32", 1, 4, false},
    {"i64", 1, 8, false},
    {"bool", 1, 1, false},
    {"q4_1", 32, 20, true},
    {"q5_0", 32, 22, true},
    {"q5_1", 32, 24, true},
    {"q2_k", 256, 84, true},
    {"q3_k", 256, 110, true},
    {"iq4_nl", 32, 18, true},
    {"iq4_xs", 256, 136, true},
    {"iq2_xxs", 256, 66, true},
    {"iq2_xs", 256, 74, true},
    {"iq2_s", 256, 82, true},
    {"iq3_xxs", 256, 98, true},
    {"iq3_s", 256, 110, true},
    {"iq1_s", 256, 50, true},
    {"iq1_m", 256, 56, true},
    {"q4_k_t16", 256, 144, true},
    {"q5_k_t16", 256, 176, true},
    {"q6_k_t16", 256, 212, true},
    {"q2_k_t16", 256, 84, true},
    {"q3_k_t16", 256, 112, true},
}};

// The first in-memory layout: names from here on are not storage types.
constexpr size_t kFirstLayout = static_cast<size_t>(WeightType::Q4_K_T16);

}  // namespace

const WeightTypeInfo& weight_type_info(WeightType t) { return kInfo.at(static_cast<size_t>(t)); }

std::optional<WeightType> weight_type_from_name(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "fp8" || lower == "f8") return WeightType::F8_E4M3;
  if (lower == "fp4") return WeightType::MXFP4;
  if (lower == "fp32") return WeightType::F32;
  if (lower == "fp16") return WeightType::F16;
  for (size_t i = 0; i < kFirstLayout; ++i)
    if (kInfo[i].name == lower) return static_cast<WeightType>(i);
  return std::nullopt;
}

std::optional<uint64_t> weight_type_bytes(WeightType t, uint64_t n_elems) {
  const auto& info = weight_type_info(t);
  if (n_elems % info.block_elems != 0) return std::nullopt;
  const uint64_t blocks = n_elems / info.block_elems;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(info.block_bytes), &bytes)) return std::nullopt;
  return bytes;
}

const std::vector<WeightType>& gguf_block_types() {
  static const std::vector<WeightType> t = {WeightType::Q8_0, WeightType::Q4_0, WeightType::Q4_1, WeightType::Q5_0,
                                            WeightType::Q5_1, WeightType::Q2_K, WeightType::Q3_K, WeightType::Q4_K,
                                            WeightType::Q5_K, WeightType::Q6_K, WeightType::IQ4_NL, WeightType::IQ4_XS,
                                            WeightType::IQ3_S, WeightType::IQ3_XXS, WeightType::IQ2_S,
                                            WeightType::IQ2_XS, WeightType::IQ2_XXS, WeightType::IQ1_M,
                                            WeightType::IQ1_S};
  return t;
}

bool is_gguf_block_type(WeightType t) {
  for (WeightType g : gguf_block_types())
    if (g == t) return true;
  return false;
}

std::string gguf_block_type_names() {
  std::string s;
  for (WeightType g : gguf_block_types()) s += (s.empty() ? "" : " ") + std::string(weight_type_name(g));
  return s;
}

}  // namespace strata
