// Scalar dequantizers to f32: the ground truth every fast kernel is tested against.
// Throw std::invalid_argument when sizes do not fit the format.
#pragma once

#include <cstdint>

#include "cpu-kernels/weight_type.h"

namespace strata {

// n elements of a self-contained type: F32, F16, BF16, F8_E4M3 (unscaled), F8_E8M0, the GGUF
// block types (gguf_block_types()) and the integer types (as values). n must be whole blocks.
void dequantize_row_ref(WeightType t, const void* src, float* dst, int64_t n);

// FP8 E4M3 weight [rows, cols] with block scales [ceil(rows/block), ceil(cols/block)] of
// type F32 or F8_E8M0: W[i][j] = e4m3(w[i][j]) * s[i/block][j/block] (DeepSeek's
// `weight_scale_inv`: a multiplier despite its name).
void dequantize_fp8_blockscaled_ref(const uint8_t* w, int64_t rows, int64_t cols, const void* scales,
                                    WeightType scale_type, float* dst, int64_t block = 128);

// MXFP4 weight [rows, cols]: packed [rows, cols/2] with element 2k in the low nibble and
// 2k+1 in the high nibble of byte k, and E8M0 scales [rows, cols/32].
void dequantize_mxfp4_ref(const uint8_t* packed, const uint8_t* scales, int64_t rows, int64_t cols, float* dst);

}  // namespace strata
