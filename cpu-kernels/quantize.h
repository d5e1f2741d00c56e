// Reference quantizers (f32 -> stored bytes), used to generate test models. Simple scale
// searches (max-abs / min-max); each output dequantizes with dequant.h to a bounded error.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu-kernels/weight_type.h"

namespace strata {

// n elements of F32, F16, BF16 or a GGUF block type (gguf_block_types(); n whole blocks).
std::vector<uint8_t> quantize_row_ref(WeightType t, const float* src, int64_t n);

// FP8 E4M3 [rows, cols] with per-block scales (F32: amax/448; F8_E8M0: the power of two at
// or above amax/448), scales laid out [ceil(rows/block), ceil(cols/block)].
void quantize_fp8_blockscaled_ref(const float* src, int64_t rows, int64_t cols, WeightType scale_type,
                                  std::vector<uint8_t>& w, std::vector<uint8_t>& scales, int64_t block = 128);

// MXFP4 [rows, cols] (cols % 32 == 0): E8M0 scale 2^ceil(log2(amax/6)) per 32 along a row.
void quantize_mxfp4_ref(const float* src, int64_t rows, int64_t cols, std::vector<uint8_t>& packed,
                        std::vector<uint8_t>& scales);

}  // namespace strata
